import { Schema, type Connection, type Types } from 'mongoose';

/** GGUS ticket states. */
export const TICKET_STATES = ['new', 'assigned', 'in progress', 'waiting for reply', 'on hold', 'reopened', 'solved', 'unsolved', 'verified', 'closed'] as const;
/** States in which the ticket waits for its Support Unit (as opposed to the requester, or nobody). */
export const OPEN_STATES = ['new', 'assigned', 'in progress', 'reopened', 'on hold'] as const;
export const PRIORITIES = ['less urgent', 'urgent', 'very urgent', 'top priority'] as const;
export type Priority = (typeof PRIORITIES)[number];
export type TicketState = (typeof TICKET_STATES)[number];

const personSchema = new Schema({ address: { type: String, required: true }, name: { type: String, default: '' } }, { _id: false });

export const ticketSchema = new Schema(
  {
    number: { type: Number, required: true },
    subject: { type: String, default: '' },
    requester: { type: personSchema, required: true },
    /** Addresses seen in To/Cc of the ticket's mail (other than ours): they receive the answers too. */
    participants: { type: [String], default: [] },
    /**
     * The participants brought in by mail whose sender was proven (or by an agent's reply
     * address): only they see the ticket on the portal when UNAUTHENTICATED_SENDERS=flag.
     */
    verifiedParticipants: { type: [String], default: [] },
    /** Key of the Support Unit currently responsible. */
    su: { type: String, required: true },
    state: { type: String, enum: TICKET_STATES, default: 'new' },
    priority: { type: String, enum: PRIORITIES, default: 'less urgent' },
    category: { type: String, default: null },
    /** Where it was opened. */
    channel: { type: String, enum: ['mail', 'web'], default: 'mail' },
    /** LS AAI `sub` of the requester when known (a bound address or the portal): whose "my tickets" it is in. */
    ownerSub: { type: String, default: null },
    /** Idempotency key of the message that opened the ticket: re-running its ingest finds this ticket. */
    originKey: { type: String, required: true },
    /** A tagged mail from a stranger opens a new ticket that remembers which ticket it named. */
    referredTicket: { type: Number, default: null },
    /** First Message-ID of the conversation; every mail we send lists it in References. */
    rootMessageId: { type: String, default: null },
    /** Last Message-ID the requester has seen (theirs or ours): our next mail to them replies to it. */
    requesterTip: { type: String, default: null },
    /** Agent the ticket is assigned to (an address of a member of its unit), if any. */
    assignee: { type: new Schema({ address: String, name: { type: String, default: '' } }, { _id: false }), default: null },
    /** Every unit the ticket has been in, in order (the current one included). */
    unitsSeen: { type: [String], default: [] },
    /** Count of applied transitions: event "<ticketId>@<version>" is the last one. */
    version: { type: Number, default: 0 },
    /** The version at which the current state was entered, and when: what the timers key on. */
    stateVersion: { type: Number, default: 0 },
    stateSince: { type: Date, default: null },
    /** Idempotency keys of the last transitions applied (a re-run finds its own here). */
    recentOps: { type: [new Schema({ op: String, v: Number }, { _id: false })], default: [] },
    firstResponseAt: { type: Date, default: null },
    /** When the first response is due (SLA), from the priority; null once answered. */
    slaDue: { type: Date, default: null },
    slaEscalatedAt: { type: Date, default: null },
    solvedAt: { type: Date, default: null },
    /** A reply to a closed ticket opens a new one that names the old one here. */
    previousTicket: { type: Number, default: null },
    lastDeliveryFailure: {
      type: new Schema({ to: [String], error: String, at: Date, outboxId: Schema.Types.ObjectId }, { _id: false }),
      default: null,
    },
  },
  { timestamps: true, collection: 'tickets' },
);
// A ticket's number is taken by inserting the ticket (db/coordination/numbers.ts).
ticketSchema.index({ number: 1 }, { unique: true });
ticketSchema.index({ originKey: 1 }, { unique: true });
ticketSchema.index({ updatedAt: -1 });
ticketSchema.index({ 'requester.address': 1, updatedAt: -1 });

export interface Ticket {
  _id: Types.ObjectId;
  number: number;
  subject: string;
  requester: { address: string; name: string };
  participants: string[];
  /** Absent on tickets older than sender authentication: none of their participants counts as verified. */
  verifiedParticipants?: string[];
  su: string;
  state: TicketState;
  priority: Priority;
  category: string | null;
  channel: 'mail' | 'web';
  ownerSub: string | null;
  originKey: string;
  referredTicket: number | null;
  rootMessageId: string | null;
  requesterTip: string | null;
  lastDeliveryFailure: { to: string[]; error: string; at: Date; outboxId: Types.ObjectId } | null;
  assignee: { address: string; name: string } | null;
  unitsSeen: string[];
  version: number;
  stateVersion: number;
  stateSince: Date | null;
  recentOps: { op: string; v: number }[];
  firstResponseAt: Date | null;
  slaDue: Date | null;
  slaEscalatedAt: Date | null;
  solvedAt: Date | null;
  previousTicket: number | null;
  createdAt: Date;
  updatedAt: Date;
}
export const ticketModel = (conn: Connection) => conn.model('Ticket', ticketSchema);
