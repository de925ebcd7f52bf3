import { Schema, type Connection, type Types } from 'mongoose';

/**
 * requested: the person asked (Account → Request erasure) and passed the confirmation step;
 * confirmed: the person has been told by mail, the grace period runs; executed: done (the
 * record then keeps no personal data, only the pseudonym and what was removed); cancelled: the
 * person withdrew it before it was carried out.
 */
export const ERASURE_STATES = ['requested', 'confirmed', 'executed', 'cancelled'] as const;
export type ErasureState = (typeof ERASURE_STATES)[number];

const countsSchema = new Schema(
  {
    articles: { type: Number, default: 0 },
    attachments: { type: Number, default: 0 },
    tickets: { type: Number, default: 0 },
    rawMails: { type: Number, default: 0 },
    outbound: { type: Number, default: 0 },
    blobs: { type: Number, default: 0 },
  },
  { _id: false },
);

/**
 * An erasure request (GDPR Art. 17). `_id` derives from the request's idempotency key (the
 * form's submission id), so sending the form twice records one request. `sub` and `addresses`
 * are what the execution erases; they are dropped from the record when it is executed.
 */
export const erasureRequestSchema = new Schema(
  {
    _id: { type: Schema.Types.ObjectId, required: true },
    key: { type: String, required: true },
    sub: { type: String, default: null },
    /** The addresses bound when the request was made (where the confirmation went); more are added at execution. */
    addresses: { type: [String], default: [] },
    /** What replaces their name and address on what others keep: made once, reused by a re-run. */
    pseudonym: { type: String, required: true },
    state: { type: String, enum: ERASURE_STATES, required: true },
    requestedAt: { type: Date, required: true },
    confirmedAt: { type: Date, default: null },
    /** When the daily job carries it out if no agent did before (ERASURE_GRACE_DAYS). */
    dueAt: { type: Date, required: true },
    executedAt: { type: Date, default: null },
    cancelledAt: { type: Date, default: null },
    /** Who carried it out: an agent (by name and sub), the daily job or the command line. */
    executedBy: { type: new Schema({ kind: String, sub: String, name: String }, { _id: false }), default: null },
    counts: { type: countsSchema, default: null },
  },
  { collection: 'erasurerequests', versionKey: false },
);

export interface ErasureCounts {
  articles: number;
  attachments: number;
  tickets: number;
  rawMails: number;
  outbound: number;
  blobs: number;
}

export interface ErasureRequest {
  _id: Types.ObjectId;
  key: string;
  sub: string | null;
  addresses: string[];
  pseudonym: string;
  state: ErasureState;
  requestedAt: Date;
  confirmedAt: Date | null;
  dueAt: Date;
  executedAt: Date | null;
  cancelledAt: Date | null;
  executedBy: { kind: 'agent' | 'grace' | 'cli'; sub: string | null; name: string } | null;
  counts: ErasureCounts | null;
}

/**
 * One document per day the daily privacy job finished ("privacy:<YYYY-MM-DD>"): the job runs
 * again until it is there, and what it removed is kept for the operator.
 */
export const privacyRunSchema = new Schema(
  {
    _id: { type: String, required: true },
    startedAt: { type: Date, required: true },
    finishedAt: { type: Date, required: true },
    removed: { type: Schema.Types.Mixed, default: {} },
    erasures: { type: Number, default: 0 },
  },
  { collection: 'privacyruns', versionKey: false, minimize: false },
);

export interface PrivacyRun {
  _id: string;
  startedAt: Date;
  finishedAt: Date;
  removed: Record<string, number>;
  erasures: number;
}

export const erasureRequestModel = (conn: Connection) => conn.model('ErasureRequest', erasureRequestSchema);
export const privacyRunModel = (conn: Connection) => conn.model('PrivacyRun', privacyRunSchema);
