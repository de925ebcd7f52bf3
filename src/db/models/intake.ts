import { Schema, type Connection, type Types } from 'mongoose';

/**
 * Leases of the mailbox readers, one document per epoch: _id "imap:<mailbox>#<epoch>". A
 * process becomes the reader by inserting the next epoch's document (db/coordination/epoch-lease.ts), and
 * keeps it by moving its expiresAt ahead (a heartbeat). Once expiresAt has passed, anyone may
 * insert the next epoch; exactly one insert wins. Old epochs stay: they are a few small
 * documents per takeover, and keeping them means an epoch can never be taken twice.
 */
export const imapLeaseSchema = new Schema(
  {
    _id: { type: String, required: true },
    mailbox: { type: String, required: true },
    epoch: { type: Number, required: true },
    owner: { type: String, required: true },
    acquiredAt: { type: Date, required: true },
    expiresAt: { type: Date, required: true },
  },
  { collection: 'imapleases', versionKey: false },
);

/** Where a reader stands in its folder: _id = mailbox name. Written only by the lease holder. */
export const imapCheckpointSchema = new Schema(
  {
    _id: { type: String, required: true },
    /** The latest epoch known to have been taken: a hint where to look for the current lease. */
    epoch: { type: Number, default: 0 },
    folder: { type: String, default: null },
    uidValidity: { type: String, default: null },
    /** Highest UID whose message is stored in the inbox (under uidValidity). */
    lastUid: { type: Number, default: 0 },
    updatedAt: { type: Date, default: null },
  },
  { collection: 'imapcheckpoints', versionKey: false },
);

/**
 * What each intake (the SMTP listener of a process, each mailbox, the MTA pipe) last did, for
 * `helpgate status`: _id "smtp:<host>:<port>", "imap:<mailbox>", "pipe". Written by the running
 * processes on events, at most every few seconds, and as a heartbeat.
 */
export const intakeStatusSchema = new Schema(
  {
    _id: { type: String, required: true },
    kind: { type: String, enum: ['smtp', 'imap', 'pipe'], required: true },
    state: { type: String, required: true },
    /** Who reports: "<host>:<pid>". */
    reporter: { type: String, default: null },
    detail: { type: String, default: null },
    lastMessageAt: { type: Date, default: null },
    messages: { type: Number, default: 0 },
    /** Messages waiting in the mailbox at the last look (IMAP). */
    backlog: { type: Number, default: null },
    lastError: { type: String, default: null },
    lastErrorAt: { type: Date, default: null },
    /** Connection (or login) attempts since the last success. */
    failures: { type: Number, default: 0 },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'intakestatus', versionKey: false },
);

/**
 * Something an intake could not deliver as a message and its sender should hear about, e.g. a
 * mail over MAX_MESSAGE_SIZE found in a mailbox. The receive side writes it (it may not send
 * mail); the domain answers it with a notice keyed by `key` (so the sender is told once, however
 * often the message is seen) and deletes it. _id = the inbox item that records the message.
 */
export const intakeNoticeSchema = new Schema(
  {
    _id: { type: Schema.Types.ObjectId, required: true },
    kind: { type: String, enum: ['too-large'], required: true },
    key: { type: String, required: true },
    mailbox: { type: String, default: null },
    size: { type: Number, required: true },
    limit: { type: Number, required: true },
    folder: { type: String, default: null },
    createdAt: { type: Date, required: true },
  },
  { collection: 'intakenotices', versionKey: false },
);

export interface ImapLease {
  _id: string;
  mailbox: string;
  epoch: number;
  owner: string;
  acquiredAt: Date;
  expiresAt: Date;
}

export interface ImapCheckpoint {
  _id: string;
  epoch: number;
  folder: string | null;
  uidValidity: string | null;
  lastUid: number;
  updatedAt: Date | null;
}

export interface IntakeStatus {
  _id: string;
  kind: 'smtp' | 'imap' | 'pipe';
  state: string;
  reporter: string | null;
  detail: string | null;
  lastMessageAt: Date | null;
  messages: number;
  backlog: number | null;
  lastError: string | null;
  lastErrorAt: Date | null;
  failures: number;
  updatedAt: Date;
}

export interface IntakeNotice {
  _id: Types.ObjectId;
  kind: 'too-large';
  key: string;
  mailbox: string | null;
  size: number;
  limit: number;
  folder: string | null;
  createdAt: Date;
}

export const intakeModels = (conn: Connection) => ({
  ImapLease: conn.model('ImapLease', imapLeaseSchema),
  ImapCheckpoint: conn.model('ImapCheckpoint', imapCheckpointSchema),
  IntakeStatus: conn.model('IntakeStatus', intakeStatusSchema),
  IntakeNotice: conn.model('IntakeNotice', intakeNoticeSchema),
});
