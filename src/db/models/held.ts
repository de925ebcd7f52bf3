import { Schema, type Connection, type Types } from 'mongoose';

/**
 * A sender whose mail is held (UNBOUND_SENDERS=hold): _id is the lower-cased address.
 *
 * The list of its held mails is not an array here (two mails held at once could lose one
 * entry of a $push, see db/coordination): each held mail is appended to the list
 * "<address>" in `heldmails` (appendSlot), and readers walk it with readSlots. `slots` and `settled` below are only hints: a lost
 * update makes a reader start lower and read a few more slots, never skip one.
 */
export const heldSenderSchema = new Schema(
  {
    _id: { type: String, required: true },
    firstHeldAt: { type: Date, required: true },
    lastHeldAt: { type: Date, default: null },
    /** Highest slot known to be taken: where the next held mail starts trying. */
    slots: { type: Number, default: 0 },
    /** Every slot up to this one is settled (released, expired, ignored): reads start after it. */
    settled: { type: Number, default: 0 },
    /** When we last mailed this sender (the sign-in link or the expiry notice). */
    lastNoticeAt: { type: Date, default: null },
    /** When held mail of this sender last expired unclaimed. */
    expiredAt: { type: Date, default: null },
    /** When, and to whom, its held mail was last released. */
    releasedAt: { type: Date, default: null },
    releasedTo: { type: String, default: null },
  },
  { collection: 'heldsenders', versionKey: false },
);

/**
 * One held mail: _id "<address>#<n>", taken by insert (see above). The inbox item remains the
 * authority on its state (held, expired, done); this is the index that finds it by _id.
 */
export const heldMailSchema = new Schema(
  {
    _id: { type: String, required: true },
    address: { type: String, required: true },
    n: { type: Number, required: true },
    inboxId: { type: Schema.Types.ObjectId, required: true },
    receivedAt: { type: Date, required: true },
    /** For the expiry notice: which message it was, never its body. */
    subject: { type: String, default: '' },
    messageId: { type: String, default: null },
    /** Why the mail must get no automatic answer, if so (loop rules). */
    automated: { type: String, default: null },
  },
  { collection: 'heldmails', versionKey: false },
);

export interface HeldSender {
  _id: string;
  firstHeldAt: Date;
  lastHeldAt: Date | null;
  slots: number;
  settled: number;
  lastNoticeAt: Date | null;
  expiredAt: Date | null;
  releasedAt: Date | null;
  releasedTo: string | null;
}

export interface HeldMail {
  _id: string;
  address: string;
  n: number;
  inboxId: Types.ObjectId;
  receivedAt: Date;
  subject: string;
  messageId: string | null;
  automated: string | null;
}

export const heldSenderModel = (conn: Connection) => conn.model('HeldSender', heldSenderSchema);
export const heldMailModel = (conn: Connection) => conn.model('HeldMail', heldMailSchema);
