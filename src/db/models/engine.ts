import { Schema, type Connection, type Types } from 'mongoose';

/**
 * The audit log, which is also the write-ahead log of ticket transitions. An applied
 * transition is the event "<ticketId>@<version>": inserting it is what wins the transition (an
 * insert-once, see db/coordination), and its `set` is then applied to the ticket. A refused attempt is kept too,
 * under "<ticketId>!<hash of its operation>", so that a lost race shows in the log.
 */
export const ticketEventSchema = new Schema(
  {
    _id: { type: String, required: true },
    ticketId: { type: Schema.Types.ObjectId, required: true },
    ticketNumber: { type: Number, required: true },
    /** The version this event made (applied), or null (refused). */
    version: { type: Number, default: null },
    action: { type: String, required: true },
    /** Idempotency key of the operation (a mail's command, a web form submission, a timer). */
    op: { type: String, required: true },
    actor: {
      type: new Schema({ address: { type: String, default: null }, name: { type: String, default: '' }, sub: { type: String, default: null }, role: { type: String, required: true } }, { _id: false }),
      required: true,
    },
    channel: { type: String, enum: ['web', 'mail', 'timer', 'system'], required: true },
    at: { type: Date, required: true },
    outcome: { type: String, enum: ['applied', 'refused'], required: true },
    reason: { type: String, default: null },
    changes: { type: [new Schema({ field: String, from: Schema.Types.Mixed, to: Schema.Types.Mixed }, { _id: false })], default: [] },
    /** The ticket fields this transition sets (replayed if the ticket write was lost). */
    set: { type: Schema.Types.Mixed, default: {} },
    articleId: { type: Schema.Types.ObjectId, default: null },
  },
  { collection: 'ticketevents', minimize: false },
);
ticketEventSchema.index({ ticketId: 1, at: 1 });

export type EventChannel = 'web' | 'mail' | 'timer' | 'system';
export interface Actor {
  address: string | null;
  name: string;
  sub: string | null;
  role: 'agent' | 'requester' | 'participant' | 'system';
}

export interface TicketEvent {
  _id: string;
  ticketId: Types.ObjectId;
  ticketNumber: number;
  version: number | null;
  action: string;
  op: string;
  actor: Actor;
  channel: EventChannel;
  at: Date;
  outcome: 'applied' | 'refused';
  reason: string | null;
  changes: { field: string; from: unknown; to: unknown }[];
  set: Record<string, unknown>;
  articleId: Types.ObjectId | null;
}

/**
 * A timer: "<kind>:<ticketId>@<stateVersion>". It is written before the transition that
 * starts it, and runs only if the ticket is still in the state (and state version) it was
 * made for; it is deleted once run. Any helpgate process may run it, under a slot lock.
 */
export const jobSchema = new Schema(
  {
    _id: { type: String, required: true },
    kind: { type: String, required: true },
    ticketId: { type: Schema.Types.ObjectId, required: true },
    ticketNumber: { type: Number, required: true },
    /** The state and state version the ticket must still be in for the job to act. */
    state: { type: String, required: true },
    stateVersion: { type: Number, required: true },
    due: { type: Date, required: true },
  },
  { collection: 'jobs' },
);
jobSchema.index({ due: 1 });

export interface Job {
  _id: string;
  kind: string;
  ticketId: Types.ObjectId;
  ticketNumber: number;
  state: string;
  stateVersion: number;
  due: Date;
}

/** Values that must be the same in every helpgate process, made once: e.g. the reply-token key. */
export const secretSchema = new Schema({ _id: { type: String, required: true }, value: { type: String, required: true } }, { collection: 'secrets' });

export const ticketEventModel = (conn: Connection) => conn.model('TicketEvent', ticketEventSchema);
export const jobModel = (conn: Connection) => conn.model('Job', jobSchema);
export const secretModel = (conn: Connection) => conn.model('Secret', secretSchema);
