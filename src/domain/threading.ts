import type { Ticket } from '../db/models/ticket.ts';
import type { ParsedMessage } from '../mail/parse/parse.ts';
import type { DomainContext } from './context.ts';
import { findTicketByNumber } from './tickets.ts';
import { findByIds } from '../db/coordination/index.ts';

export interface ThreadMatch {
  ticket: Ticket;
  via: 'tag' | 'references';
}

/**
 * Finds the ticket a mail continues: our subject tag first (`tags`, read by mail/parse/read.ts), then In-Reply-To and References
 * (newest first) against every Message-ID the ticket has seen or sent. Subject text alone
 * ("Re: same words") never threads.
 */
export async function resolveThread(ctx: DomainContext, mail: Pick<ParsedMessage, 'inReplyTo' | 'references'>, tags: readonly number[]): Promise<ThreadMatch | null> {
  // References first, though the tag decides: they are looked up by _id, which stays fast as
  // history grows on every engine, unlike a look-up by number (db/coordination/index.ts). A reply
  // to our mail usually carries both, naming one ticket, and then no look-up by number is needed.
  const referenced = await ticketByReferences(ctx, mail);
  if (referenced && referenced.number === tags[0]) return { ticket: referenced, via: 'tag' };
  for (const number of tags) {
    const ticket = await findTicketByNumber(ctx, number);
    if (ticket) return { ticket, via: 'tag' };
  }
  return referenced ? { ticket: referenced, via: 'references' } : null;
}

/** The ticket of the best known of In-Reply-To and References (In-Reply-To, then the latest reference). */
async function ticketByReferences(ctx: DomainContext, mail: Pick<ParsedMessage, 'inReplyTo' | 'references'>): Promise<Ticket | null> {
  const ids = [...new Set([mail.inReplyTo, ...[...mail.references].reverse()].filter((x): x is string => !!x))].slice(0, 100);
  if (!ids.length) return null;
  const [found] = await findByIds<{ _id: string; ticketId: unknown }>(ctx.store.models.ThreadId, ids, { projection: { ticketId: 1 }, stopAtFirst: true });
  if (!found) return null;
  return ctx.store.models.Ticket.findById(found.ticketId).lean<Ticket>();
}

/** Whether the mail's In-Reply-To or References name a mail we sent. */
export async function repliesToOurMail(ctx: DomainContext, mail: Pick<ParsedMessage, 'inReplyTo' | 'references'>): Promise<boolean> {
  const ids = [...new Set([mail.inReplyTo, ...mail.references].filter((x): x is string => !!x))].slice(0, 100);
  const found = await findByIds<{ ours?: boolean }>(ctx.store.models.ThreadId, ids, { projection: { ours: 1 } });
  return found.some((d) => d.ours);
}

export type SenderRole = 'requester' | 'agent' | 'participant' | 'stranger';

export function senderRole(ctx: DomainContext, ticket: Ticket, sender: string): SenderRole {
  const s = sender.toLowerCase();
  if (ticket.requester.address === s) return 'requester';
  if (ctx.units.isAgent(s)) return 'agent';
  if (ticket.participants.includes(s)) return 'participant';
  return 'stranger';
}
