import type { PortalUser } from '../db/models/identity.ts';
import type { Ticket } from '../db/models/ticket.ts';
import type { DomainContext } from './context.ts';

/** How much text of a ticket's conversation its summary keeps for searching. */
const SEARCH_TEXT_CHARS = 2000;

export interface TicketSummary {
  number: number;
  subject: string;
  state: string;
  su: string;
  priority: string;
  createdAt: Date;
  updatedAt: Date;
  /** Lower-cased start of the conversation, for "search in text". */
  text: string;
}

export interface TicketListPage {
  items: TicketSummary[];
  total: number;
  page: number;
  pages: number;
}

/**
 * Records a ticket's current state in its owner's list (ticket-list documents, see
 * db/models/identity.ts). Called after every change of a ticket; `text` is new conversation
 * text to make searchable. A list entry is a cache of the ticket: the ticket page shows the
 * ticket itself, and showing it refreshes the entry.
 */
export async function recordInTicketList(ctx: DomainContext, ticket: Ticket, text = ''): Promise<void> {
  if (!ticket.ownerSub) return;
  const { TicketList } = ctx.store.models;
  const list = await TicketList.findById(ticket.ownerSub).lean<{ tickets: Record<string, TicketSummary> }>();
  const before = list?.tickets?.[String(ticket.number)];
  const entry = summaryOf(ticket, `${before?.text ?? ''} ${text.toLowerCase()}`.trim());
  if (before && sameSummary(before, entry)) return;
  await writeEntry(ctx, ticket.ownerSub, entry);
}

/** A ticket's entry in its owner's list, with its search text. */
function summaryOf(ticket: Ticket, text: string): TicketSummary {
  return {
    number: ticket.number,
    subject: ticket.subject,
    state: ticket.state,
    su: ticket.su,
    priority: ticket.priority ?? 'less urgent',
    createdAt: ticket.createdAt,
    updatedAt: ticket.updatedAt,
    text: text.slice(0, SEARCH_TEXT_CHARS),
  };
}

async function writeEntry(ctx: DomainContext, ownerSub: string, entry: TicketSummary): Promise<void> {
  await ctx.store.models.TicketList.updateOne({ _id: ownerSub }, { $set: { [`tickets.${entry.number}`]: entry } }, { upsert: true });
}

function sameSummary(a: TicketSummary, b: TicketSummary): boolean {
  return a.subject === b.subject && a.state === b.state && a.su === b.su && a.priority === b.priority && a.text === b.text && new Date(a.updatedAt).getTime() === new Date(b.updatedAt).getTime();
}

export interface TicketListQuery {
  /** Matches the number, the subject or the text. */
  q?: string;
  state?: string;
  page?: number;
  perPage?: number;
}

/** A person's tickets, newest activity first, filtered and paged. */
export async function listOwnTickets(ctx: DomainContext, user: Pick<PortalUser, '_id'>, query: TicketListQuery = {}): Promise<TicketListPage> {
  const list = await ctx.store.models.TicketList.findById(user._id).lean<{ tickets: Record<string, TicketSummary> }>();
  const q = (query.q ?? '').trim().toLowerCase().replace(/^#/, '');
  let items = Object.values(list?.tickets ?? {});
  if (query.state) items = items.filter((t) => t.state === query.state);
  if (q) items = items.filter((t) => String(t.number).includes(q) || t.subject.toLowerCase().includes(q) || t.text.includes(q));
  items.sort((a, b) => new Date(b.updatedAt).getTime() - new Date(a.updatedAt).getTime() || b.number - a.number);
  const perPage = Math.min(100, Math.max(1, query.perPage ?? 25));
  const pages = Math.max(1, Math.ceil(items.length / perPage));
  const page = Math.min(pages, Math.max(1, Math.floor(query.page ?? 1)));
  return { items: items.slice((page - 1) * perPage, page * perPage), total: items.length, page, pages };
}

/**
 * Writes a ticket's entry in its owner's list anew, its search text made from `texts` (the
 * conversation as it is now): for when text was removed from a ticket (an erasure), which the
 * appending recordInTicketList cannot take back.
 */
export async function rewriteTicketListEntry(ctx: DomainContext, ticket: Ticket, texts: readonly string[]): Promise<void> {
  if (!ticket.ownerSub) return;
  await writeEntry(ctx, ticket.ownerSub, summaryOf(ticket, texts.join(' ').toLowerCase().replace(/\s+/g, ' ').trim()));
}
