import { Schema, type Connection } from 'mongoose';

/**
 * The audit log of operations on mail that is not (yet) a ticket: held mail released or
 * discarded, quarantined inbox items retried, failed outbound mail retried or cancelled. Ticket
 * changes have their own log (ticketevents); these act on inbox and outbox items instead. One
 * insert per action, never changed.
 */
export const opsEventSchema = new Schema(
  {
    /** e.g. held.release, held.discard, inbox.retry, outbox.retry, outbox.cancel */
    action: { type: String, required: true },
    /** What was acted on: its collection, _id, and a line a person recognises it by. */
    target: {
      type: new Schema({ kind: { type: String, enum: ['inbox', 'outbox'], required: true }, id: { type: String, required: true }, label: { type: String, default: '' } }, { _id: false }),
      required: true,
    },
    actor: {
      type: new Schema({ address: { type: String, default: null }, name: { type: String, default: '' }, sub: { type: String, default: null } }, { _id: false }),
      required: true,
    },
    channel: { type: String, enum: ['web', 'cli'], required: true },
    at: { type: Date, required: true },
    /** refused: the item was no longer in the state the action needs (someone was quicker). */
    outcome: { type: String, enum: ['applied', 'refused'], required: true },
    reason: { type: String, default: null },
  },
  { collection: 'opsevents', versionKey: false },
);
opsEventSchema.index({ at: -1 });

export interface OpsEvent {
  _id: unknown;
  action: string;
  target: { kind: 'inbox' | 'outbox'; id: string; label: string };
  actor: { address: string | null; name: string; sub: string | null };
  channel: 'web' | 'cli';
  at: Date;
  outcome: 'applied' | 'refused';
  reason: string | null;
}

export const opsEventModel = (conn: Connection) => conn.model('OpsEvent', opsEventSchema);
