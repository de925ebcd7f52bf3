import type { Ticket } from '../db/models/ticket.ts';
import { findTicketTags } from '../mail/parse/subject.ts';
import type { ParsedMessage } from '../mail/parse/parse.ts';
import type { DomainContext } from './context.ts';
import { findTicketByNumber } from './tickets.ts';

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
  // One _id look-up per id, best first, stopping at the first known one: FerretDB 1.24 answers
  // only {_id: value} from an index, and `_id: {$in}` decoded every stored Message-ID.
  for (const id of ids) {
    const found = await ThreadId.findById(id, { ticketId: 1 }).lean<{ _id: string; ticketId: unknown }>();
    if (!found) continue;
    const ticket = await Ticket.findById(found.ticketId).lean<Ticket>();
    return ticket ? { ticket, via: 'references' } : null;
  }
  return null;
}

export type SenderRole = 'requester' | 'agent' | 'participant' | 'stranger';

export function senderRole(ctx: DomainContext, ticket: Ticket, sender: string): SenderRole {
  const s = sender.toLowerCase();
  if (ticket.requester.address === s) return 'requester';
  if (ctx.units.isAgent(s)) return 'agent';
  if (ticket.participants.includes(s)) return 'participant';
  return 'stranger';
}
