import { Schema, type Connection, type Types } from 'mongoose';

/** Where a raw message came in. */
export const INBOX_SOURCES = ['smtp', 'pipe', 'imap'] as const;
/**
 * pending: waiting for (or under) ingest; done: ticket work finished; ignored: kept but not
 * ticketed; quarantined: failed too often; held: from an address bound to no identity, waiting
 * for its sender to sign in (UNBOUND_SENDERS=hold); expired: held and never claimed, kept until
 * the retention rules remove it.
 */
export const INBOX_STATES = ['pending', 'done', 'ignored', 'quarantined', 'held', 'expired'] as const;

const envelopeSchema = new Schema(
  {
    /** MAIL FROM; '' is the null reverse-path (bounces), null when unknown (pipe without -f). */
    mailFrom: { type: String, default: null },
    rcptTo: { type: [String], default: [] },
    clientIp: { type: String, default: null },
    helo: { type: String, default: null },
    /** The mailbox (config name) an IMAP message was read from. */
    mailbox: { type: String, default: null },
  },
  { _id: false },
);

export const inboxSchema = new Schema(
  {
    source: { type: String, enum: INBOX_SOURCES, required: true },
    envelope: { type: envelopeSchema, required: true },
    rawSha256: { type: String, required: true },
    /** The message itself when small (db/inbox-batch.ts keptInItem); else in blobchunks. */
    raw: { type: Buffer, default: null },
    size: { type: Number, required: true },
    receivedAt: { type: Date, required: true },
    state: { type: String, enum: INBOX_STATES, default: 'pending' },
    attempts: { type: Number, default: 0 },
    /** When a pending item is due (after a failed attempt: its backoff); re-queueing uses it. */
    availableAt: { type: Date, required: true },
    lastError: { type: String, default: null },
    ticketNumber: { type: Number, default: null },
    articleId: { type: Schema.Types.ObjectId, default: null },
    note: { type: String, default: null },
    /** The sender address a held (or expired) item waits under (see db/models/held.ts). */
    heldAddress: { type: String, default: null },
    /** Held mail an agent released as a ticket (their address): ingest no longer holds it. */
    releasedBy: { type: String, default: null },
  },
  { timestamps: true, collection: 'inbox' },
);
inboxSchema.index({ state: 1, availableAt: 1 });
inboxSchema.index({ receivedAt: -1 });

export interface InboxItem {
  _id: Types.ObjectId;
  source: (typeof INBOX_SOURCES)[number];
  envelope: { mailFrom: string | null; rcptTo: string[]; clientIp: string | null; helo: string | null; mailbox?: string | null };
  rawSha256: string;
  raw?: Buffer | null;
  size: number;
  receivedAt: Date;
  state: (typeof INBOX_STATES)[number];
  attempts: number;
  availableAt: Date;
  lastError: string | null;
  ticketNumber: number | null;
  articleId: Types.ObjectId | null;
  note: string | null;
  heldAddress: string | null;
  releasedBy?: string | null;
  createdAt: Date;
  updatedAt: Date;
}
export const inboxModel = (conn: Connection) => conn.model('InboxItem', inboxSchema);
