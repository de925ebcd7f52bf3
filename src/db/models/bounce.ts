import { Schema, type Connection, type Types } from 'mongoose';

/**
 * One hard bounce: a recipient of one of our mails that a delivery status notification called
 * undeliverable (5.x.x). _id "<outbox id>:<address>", so the same report delivered twice counts
 * once; counting an address's documents tells how often mail to it bounced. Only bounces are
 * stored here, so the collection stays small.
 */
export const hardBounceSchema = new Schema(
  {
    _id: { type: String, required: true },
    address: { type: String, required: true },
    outboxId: { type: Schema.Types.ObjectId, required: true },
    ticketId: { type: Schema.Types.ObjectId, default: null },
    ticketNumber: { type: Number, default: null },
    status: { type: String, required: true },
    diagnostic: { type: String, default: null },
    at: { type: Date, required: true },
  },
  { collection: 'hardbounces', versionKey: false },
);
hardBounceSchema.index({ address: 1 });
hardBounceSchema.index({ at: -1 });

export interface HardBounce {
  _id: string;
  address: string;
  outboxId: Types.ObjectId;
  ticketId: Types.ObjectId | null;
  ticketNumber: number | null;
  status: string;
  diagnostic: string | null;
  at: Date;
}

export const hardBounceModel = (conn: Connection) => conn.model('HardBounce', hardBounceSchema);
