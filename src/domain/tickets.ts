import type { Types } from 'mongoose';
import type { Article } from '../db/models/article.ts';
import type { Priority, Ticket } from '../db/models/ticket.ts';
import { idFor, insertManyOnce, insertNumbered, insertOnce } from '../db/coordination/index.ts';
import type { DomainContext } from './context.ts';
import { addWorkingDays } from './engine/calendar.ts';
import { recordInTicketList } from './ticket-list.ts';

/** Ticket numbers start here and grow by one; tickets are never deleted, so a number is never reused. */
export const FIRST_TICKET_NUMBER = 100001;

export interface NewTicket {
  originKey: string;
  ownerSub?: string | null;
  priority?: Priority;
  category?: string | null;
  channel?: 'mail' | 'web';
  subject: string;
  requester: { address: string; name: string };
  participants: string[];
  /** Those of `participants` named by a verified sender (see Ticket.verifiedParticipants). */
  verifiedParticipants?: string[];
  su: string;
  referredTicket?: number | null;
  /** The closed ticket a late reply came to. */
  previousTicket?: number | null;
  rootMessageId?: string | null;
  /** Default: rootMessageId. */
  requesterTip?: string | null;
}

/**
 * Creates a ticket, or returns the one this origin already created. The ticket's _id derives
 * from its originKey and its number is taken by inserting the ticket itself, so a re-run after
 * a crash (or the same message processed twice at once) finds the one ticket, and no number
 * is ever skipped.
 */
export async function createTicket(ctx: DomainContext, input: NewTicket): Promise<{ ticket: Ticket; created: boolean }> {
  const { Ticket, Job } = ctx.store.models;
  const _id = idFor('ticket', input.originKey);
  const existing = await Ticket.findById(_id).lean<Ticket>();
  const now = ctx.now();
  const slaDue = addWorkingDays(now, ctx.config.timers.firstResponse[input.priority ?? 'less urgent']);
  const result = existing
    ? { doc: existing, created: false }
    : await insertNumbered<Ticket>({
        model: Ticket,
        field: 'number',
        first: FIRST_TICKET_NUMBER,
        build: (number) => newTicketDoc(_id, number, input, now, slaDue),
      });
  const ticket = result.doc;
  // The first-response target's escalation timer. Written after the ticket (it names its
  // number); a re-run that finds the ticket writes it again in case the first run stopped here.
  const sla = { _id: `sla:${String(_id)}@0`, kind: 'sla', ticketId: _id, ticketNumber: ticket.number, state: 'new', stateVersion: 0, due: ticket.slaDue ?? slaDue };
  if (result.created) {
    await insertOnce(Job, sla);
    ctx.log.info({ ticket: ticket.number, su: input.su }, 'ticket created');
  } else if (ticket.state === 'new' && ticket.version === 0) await insertOnce(Job, sla);
  return { ticket, created: result.created };
}

function newTicketDoc(_id: Types.ObjectId, number: number, input: NewTicket, now: Date, slaDue: Date): Ticket & Record<string, unknown> {
  return {
    _id,
    number,
    originKey: input.originKey,
    subject: input.subject,
    requester: input.requester,
    participants: input.participants,
    verifiedParticipants: input.verifiedParticipants ?? [],
    su: input.su,
    state: 'new',
    priority: input.priority ?? 'less urgent',
    category: input.category ?? null,
    channel: input.channel ?? 'mail',
    ownerSub: input.ownerSub ?? null,
    referredTicket: input.referredTicket ?? null,
    previousTicket: input.previousTicket ?? null,
    rootMessageId: input.rootMessageId ?? null,
    requesterTip: input.requesterTip ?? input.rootMessageId ?? null,
    assignee: null,
    unitsSeen: [input.su],
    version: 0,
    stateVersion: 0,
    stateSince: now,
    recentOps: [],
    firstResponseAt: null,
    slaDue,
    slaEscalatedAt: null,
    solvedAt: null,
    lastDeliveryFailure: null,
    createdAt: now,
    updatedAt: now,
  };
}

export type NewArticle = Omit<Article, '_id' | 'createdAt' | 'updatedAt' | 'ticketId' | 'ticketNumber'>;

/**
 * Adds an article once per idempotency key; a re-run returns the stored one. A ticket's
 * articles are ordered by createdAt, then _id. `touch: false` leaves the ticket's updatedAt and
 * list entry to the caller (ingest writes them once per mail).
 */
export async function addArticle(
  ctx: DomainContext,
  ticket: Ticket,
  input: Partial<NewArticle> & Pick<NewArticle, 'key' | 'direction' | 'authorRole'>,
  opts: { touch?: boolean } = {},
): Promise<{ article: Article; created: boolean }> {
  const { Article, Ticket } = ctx.store.models;
  const now = ctx.now();
  const doc = new Article({ ...input, _id: idFor('article', input.key), ticketId: ticket._id, ticketNumber: ticket.number, createdAt: now, updatedAt: now }).toObject() as Article;
  const { doc: article, created } = await insertOnce<Article>(Article, doc as unknown as Record<string, unknown> & { _id: unknown });
  if (created && opts.touch !== false) {
    const fresh = await Ticket.findOneAndUpdate({ _id: ticket._id }, { $set: { updatedAt: now } }, { returnDocument: 'after' }).lean<Ticket>();
    // An internal note's words must not become searchable in the requester's list.
    if (fresh) await recordInTicketList(ctx, fresh, input.internal ? '' : `${input.subject ?? ''} ${input.text ?? ''}`);
  }
  return { article, created };
}

/** Remembers that a Message-ID belongs to a ticket (for In-Reply-To/References threading). */
export async function registerMessageIds(ctx: DomainContext, ticket: Pick<Ticket, '_id' | 'number'>, ids: (string | null | undefined)[], ours = false): Promise<void> {
  await registerThreadIds(ctx, ticket, ids.map((id) => ({ id, ours })));
}

/** Like registerMessageIds, for Message-IDs of both kinds at once (one write). */
export async function registerThreadIds(ctx: DomainContext, ticket: Pick<Ticket, '_id' | 'number'>, ids: { id: string | null | undefined; ours: boolean }[]): Promise<void> {
  const seen = new Set<string>();
  const docs = [];
  for (const { id, ours } of ids) {
    if (!id || seen.has(id)) continue;
    seen.add(id);
    docs.push({ _id: id, ticketId: ticket._id, ticketNumber: ticket.number, ours });
  }
  await insertManyOnce(ctx.store.models.ThreadId, docs);
}

/** The ticket with this number (one look-up by the unique number index). */
export async function findTicketByNumber(ctx: DomainContext, number: number): Promise<Ticket | null> {
  if (!Number.isSafeInteger(number)) return null;
  return ctx.store.models.Ticket.findOne({ number }).lean<Ticket>();
}

/** An article by its idempotency key. */
export async function findArticleByKey(ctx: DomainContext, key: string): Promise<Article | null> {
  return ctx.store.models.Article.findById(idFor('article', key)).lean<Article>();
}

export async function listTickets(ctx: DomainContext, opts: { limit?: number } = {}): Promise<Ticket[]> {
  return ctx.store.models.Ticket.find({}).sort({ updatedAt: -1 }).limit(opts.limit ?? 100).lean<Ticket[]>();
}

/** A ticket's articles, oldest first: one query. */
export async function ticketArticles(ctx: DomainContext, ticket: Pick<Ticket, '_id'>): Promise<Article[]> {
  return ctx.store.models.Article.find({ ticketId: ticket._id }).sort({ createdAt: 1, _id: 1 }).lean<Article[]>();
}
