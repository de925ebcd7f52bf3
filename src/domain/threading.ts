import type { Ticket } from '../db/models/ticket.ts';
import { findTicketTags } from '../mail/parse/subject.ts';
import type { ParsedMessage } from '../mail/parse/parse.ts';
import type { DomainContext } from './context.ts';
import { findTicketByNumber } from './tickets.ts';
import { findByIds } from '../db/coordination/index.ts';

export interface ThreadMatch {
  ticket: Ticket;
  via: 'tag' | 'references';
}

/**
 * Finds the ticket a mail continues: our subject tag first, then In-Reply-To and References
 * (newest first) against every Message-ID the ticket has seen or sent. Subject text alone
 * ("Re: same words") never threads.
 */
export async function resolveThread(ctx: DomainContext, mail: Pick<ParsedMessage, 'subject' | 'inReplyTo' | 'references'>): Promise<ThreadMatch | null> {
  const { Ticket, ThreadId } = ctx.store.models;
  for (const number of findTicketTags(mail.subject, ctx.config.ticketPrefix)) {
    const ticket = await findTicketByNumber(ctx, number);
    if (ticket) return { ticket, via: 'tag' };
  }
  const ids = [...new Set([mail.inReplyTo, ...[...mail.references].reverse()].filter((x): x is string => !!x))].slice(0, 100);
  if (!ids.length) return null;
  // The best known one (In-Reply-To, then the latest reference) wins.
  const known = await findByIds<{ _id: string; ticketId: unknown }>(ThreadId, ids, { projection: { ticketId: 1 }, stopAtFirst: true });
  const byId = new Map(known.map((k) => [k._id, k]));
  const found = ids.map((id) => byId.get(id)).find((k) => !!k);
  if (!found) return null;
  const ticket = await Ticket.findById(found.ticketId).lean<Ticket>();
  return ticket ? { ticket, via: 'references' } : null;
}

export type SenderRole = 'requester' | 'agent' | 'participant' | 'stranger';

export function senderRole(ctx: DomainContext, ticket: Ticket, sender: string): SenderRole {
  const s = sender.toLowerCase();
  if (ticket.requester.address === s) return 'requester';
  if (ctx.units.isAgent(s)) return 'agent';
  if (ticket.participants.includes(s)) return 'participant';
  return 'stranger';
}
