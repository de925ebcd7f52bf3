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

export interface BouncedRecipient {
  address: string;
  action: 'failed' | 'delayed';
  status: string;
  diagnostic: string | null;
  reportingMta: string | null;
  /** Hard bounces of mail to this address so far (this one included); 0 for a delay. */
  hardBounces: number;
}

/**
 * What a delivery status notification said about a mail of this ticket, as an internal note
 * (agents see it; it is never mailed): one note per mail, kind of report and set of recipients.
 * A hard bounce is also the ticket's lastDeliveryFailure.
 */
export async function recordBounce(ctx: DomainContext, mail: FailedMail & { kind: string }, recipients: BouncedRecipient[]): Promise<void> {
  if (!mail.ticketId || !recipients.length) return;
  const { Ticket } = ctx.store.models;
  const failed = recipients.filter((r) => r.action === 'failed');
  const ticket = failed.length
    ? await Ticket.findOneAndUpdate(
        { _id: mail.ticketId },
        { $set: { lastDeliveryFailure: { to: failed.map((r) => r.address), error: failed.map(bounceLine).join('; '), at: ctx.now(), outboxId: mail._id } } },
        { returnDocument: 'after' },
      ).lean<Ticket>()
    : await Ticket.findById(mail.ticketId).lean<Ticket>();
  if (!ticket) return;
  const action = failed.length ? 'failed' : 'delayed';
  const shown = failed.length ? failed : recipients;
  const lines = shown.map((r) => {
    const repeated = r.hardBounces > 1 ? ` Mail to ${r.address} has now bounced ${r.hardBounces} times.` : '';
    return `- ${bounceLine(r)}${r.reportingMta ? ` (reported by ${r.reportingMta})` : ''}.${repeated}`;
  });
  const head =
    action === 'failed'
      ? `The mail "${mail.subject}" (${mail.kind}) could not be delivered:`
      : `The mail "${mail.subject}" (${mail.kind}) is delayed; the sending server keeps trying:`;
  await addArticle(ctx, ticket, {
    key: `bounce:${mail._id}:${action}:${shown.map((r) => r.address).sort().join(',')}`,
    direction: 'system',
    authorRole: 'system',
    channel: 'system',
    internal: true,
    subject: `${action === 'failed' ? 'Undeliverable' : 'Delayed'}: ${mail.subject}`,
    text: `${head}\n${lines.join('\n')}`,
  });
  ctx.log.warn({ ticket: ticket.number, to: shown.map((r) => r.address), action }, 'bounce recorded on ticket');
}

function bounceLine(r: Pick<BouncedRecipient, 'address' | 'status' | 'diagnostic'>): string {
  return `${r.address}: ${r.status}${r.diagnostic ? ` ${r.diagnostic}` : ''}`;
}
