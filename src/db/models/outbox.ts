import { Schema, type Connection, type Types } from 'mongoose';

/**
 * queued: waiting to be sent (or retried); sent: accepted by the relay; captured: kept locally (no
 * relay); failed: given up, or reported undeliverable to a recipient by a delivery status
 * notification after the relay took it (see `bounces`); cancelled: failed, and an agent decided
 * it is not to be sent again; delayed: reported delayed by a delivery status notification.
 */
export const OUTBOX_STATES = ['queued', 'sent', 'captured', 'failed', 'cancelled', 'delayed'] as const;

const headerSchema = new Schema({ key: { type: String, required: true }, value: { type: String, required: true } }, { _id: false });

/** What a delivery status notification said about one recipient of the mail. */
const bounceReportSchema = new Schema(
  {
    address: { type: String, required: true },
    action: { type: String, required: true },
    status: { type: String, required: true },
    diagnostic: { type: String, default: null },
    reportingMta: { type: String, default: null },
    at: { type: Date, required: true },
  },
  { _id: false },
);

export const outboxSchema = new Schema(
  {
    /** Idempotency key, e.g. "<articleId>:ack:<address>": enqueueing twice stores one mail. */
    key: { type: String, required: true },
    kind: { type: String, required: true },
    ticketId: { type: Schema.Types.ObjectId, default: null },
    ticketNumber: { type: Number, default: null },
    articleId: { type: Schema.Types.ObjectId, default: null },
    envelopeFrom: { type: String, required: true },
    from: { type: String, required: true },
    to: { type: [String], required: true },
    cc: { type: [String], default: [] },
    /** The recipients of this copy when not all of To and Cc (each person's copy carries their own Reply-To). */
    envelopeTo: { type: [String], default: [] },
    replyTo: { type: String, default: null },
    subject: { type: String, required: true },
    /** Generated once at enqueue, reused on every retry. */
    messageId: { type: String, required: true },
    inReplyTo: { type: String, default: null },
    references: { type: [String], default: [] },
    headers: { type: [headerSchema], default: [] },
    date: { type: Date, required: true },
    text: { type: String, required: true },
    html: { type: String, default: null },
    state: { type: String, enum: OUTBOX_STATES, default: 'queued' },
    attempts: { type: Number, default: 0 },
    dueAt: { type: Date, required: true },
    lastError: { type: String, default: null },
    response: { type: String, default: null },
    sentAt: { type: Date, default: null },
    /** The MIME message as it would have been sent, when no relay is configured. */
    raw: { type: Buffer, default: null },
    /** Its text, HTML and MIME copy were removed (retention rules, or an erasure): when and why. */
    contentRemoved: { type: new Schema({ at: Date, reason: String }, { _id: false }), default: null },
    /** Delivery status notifications received for this mail, one entry per recipient (the latest). */
    bounces: { type: [bounceReportSchema], default: [] },
  },
  { timestamps: true, collection: 'outbox' },
);
outboxSchema.index({ key: 1 }, { unique: true });
outboxSchema.index({ state: 1, dueAt: 1 });
outboxSchema.index({ createdAt: -1 });
// A bounce that names only the Message-ID of the mail it returns (domain/ingest/bounces.ts).
outboxSchema.index({ messageId: 1 });

export interface BounceReport {
  address: string;
  action: string;
  status: string;
  diagnostic: string | null;
  reportingMta: string | null;
  at: Date;
}

export interface OutboxMail {
  _id: Types.ObjectId;
  key: string;
  kind: string;
  ticketId: Types.ObjectId | null;
  ticketNumber: number | null;
  articleId: Types.ObjectId | null;
  envelopeFrom: string;
  from: string;
  to: string[];
  cc: string[];
  envelopeTo?: string[];
  replyTo: string | null;
  subject: string;
  messageId: string;
  inReplyTo: string | null;
  references: string[];
  headers: { key: string; value: string }[];
  date: Date;
  text: string;
  html: string | null;
  state: (typeof OUTBOX_STATES)[number];
  attempts: number;
  dueAt: Date;
  lastError: string | null;
  response: string | null;
  sentAt: Date | null;
  raw: Buffer | null;
  contentRemoved?: { at: Date; reason: string } | null;
  bounces?: BounceReport[];
  createdAt: Date;
  updatedAt: Date;
}
export const outboxModel = (conn: Connection) => conn.model('OutboxMail', outboxSchema);
