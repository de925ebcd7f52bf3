import type { Types } from 'mongoose';
import type { Ticket } from '../db/models/ticket.ts';
import type { DomainContext } from './context.ts';
import { addArticle } from './tickets.ts';

export interface FailedMail {
  _id: Types.ObjectId;
  ticketId?: Types.ObjectId | null;
  to: string[];
  cc: string[];
  subject: string;
}

/** A mail we could not deliver is recorded on its ticket: a system article and lastDeliveryFailure. */
export async function recordDeliveryFailure(ctx: DomainContext, mail: FailedMail, error: string): Promise<void> {
  if (!mail.ticketId) return;
  const { Ticket } = ctx.store.models;
  const recipients = [...mail.to, ...mail.cc];
  const ticket = await Ticket.findOneAndUpdate(
    { _id: mail.ticketId },
    { $set: { lastDeliveryFailure: { to: recipients, error, at: ctx.now(), outboxId: mail._id } } },
    { returnDocument: 'after' },
  ).lean<Ticket>();
  if (!ticket) return;
  await addArticle(ctx, ticket, {
    key: `delivery-failure:${mail._id}`,
    direction: 'system',
    authorRole: 'system',
    channel: 'system',
    subject: `Delivery failed: ${mail.subject}`,
    text: `The mail "${mail.subject}" to ${recipients.join(', ')} could not be delivered: ${error}`,
  });
  ctx.log.warn({ ticket: ticket.number, to: recipients }, 'delivery failure recorded on ticket');
}
