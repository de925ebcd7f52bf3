import type { Types } from 'mongoose';
import type { Article } from '../db/models/article.ts';
import type { Ticket } from '../db/models/ticket.ts';
import { isDuplicateKeyError } from '../errors/errors.ts';
import type { DomainContext } from './context.ts';

/** Ticket numbers start here and grow by one; tickets are never deleted, so a number is never reused. */
export const FIRST_TICKET_NUMBER = 100001;

export interface NewTicket {
  originKey: string;
  subject: string;
  requester: { address: string; name: string };
  participants: string[];
  su: string;
  referredTicket?: number | null;
  rootMessageId?: string | null;
}

/**
 * Creates a ticket, or returns the one this origin already created (a re-run after a crash
 * finds it by its unique originKey, so no duplicate ticket can appear).
 */
export async function createTicket(ctx: DomainContext, input: NewTicket): Promise<{ ticket: Ticket; created: boolean }> {
  const { Ticket } = ctx.store.models;
  // The number is claimed by the insert itself: "number" has a unique index, and an insert
  // into a unique index is atomic on MongoDB and FerretDB alike (a counter's $inc is not
  // atomic on FerretDB). A lost race means another process took that number: take the next.
  for (let attempt = 0; attempt < 50; attempt++) {
    const existing = await Ticket.findOne({ originKey: input.originKey }).lean<Ticket>();
    if (existing) return { ticket: existing, created: false };
    const last = await Ticket.findOne({}, { number: 1 }).sort({ number: -1 }).lean<{ number: number }>();
    const number = Math.max(FIRST_TICKET_NUMBER, (last?.number ?? 0) + 1);
    try {
      const doc = await Ticket.create({
        ...input,
        number,
        state: 'new',
        referredTicket: input.referredTicket ?? null,
        rootMessageId: input.rootMessageId ?? null,
        requesterTip: input.rootMessageId ?? null,
      });
      ctx.log.info({ ticket: number, su: input.su }, 'ticket created');
      return { ticket: doc.toObject() as Ticket, created: true };
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
    }
  }
  throw new Error('could not allocate a ticket number after 50 attempts');
}

export type NewArticle = Omit<Article, '_id' | 'createdAt' | 'updatedAt' | 'ticketId' | 'ticketNumber'>;

/** Adds an article once per idempotency key; a re-run returns the stored one. */
export async function addArticle(ctx: DomainContext, ticket: Ticket, input: Partial<NewArticle> & Pick<NewArticle, 'key' | 'direction' | 'authorRole'>): Promise<{ article: Article; created: boolean }> {
  const { Article, Ticket } = ctx.store.models;
  // Insert first; the unique index on `key` turns a re-run into a duplicate-key error (a
  // lookup by key first would scan every article on FerretDB 1.24, which indexes only {_id}).
  try {
    const doc = await Article.create({ ...input, ticketId: ticket._id, ticketNumber: ticket.number });
    await Ticket.updateOne({ _id: ticket._id }, { $set: { updatedAt: ctx.now() } });
    return { article: doc.toObject() as Article, created: true };
  } catch (err) {
    if (!isDuplicateKeyError(err)) throw err;
    const article = await Article.findOne({ key: input.key }).lean<Article>();
    if (!article) throw err;
    return { article, created: false };
  }
}

/** Remembers that a Message-ID belongs to a ticket (for In-Reply-To/References threading). */
export async function registerMessageIds(ctx: DomainContext, ticket: Pick<Ticket, '_id' | 'number'>, ids: (string | null | undefined)[], ours = false): Promise<void> {
  const docs = [...new Set(ids.filter((x): x is string => !!x))].map((id) => ({ _id: id, ticketId: ticket._id, ticketNumber: ticket.number, ours }));
  if (!docs.length) return;
  try {
    await ctx.store.models.ThreadId.collection.insertMany(docs as never[], { ordered: false });
  } catch (err) {
    const writeErrors = (err as { writeErrors?: { code?: number }[] }).writeErrors;
    if (!isDuplicateKeyError(err) && !(writeErrors && writeErrors.every((e) => e.code === 11000))) throw err;
  }
}

export async function findTicketByNumber(ctx: DomainContext, number: number): Promise<Ticket | null> {
  return ctx.store.models.Ticket.findOne({ number }).lean<Ticket>();
}

export async function listTickets(ctx: DomainContext, opts: { limit?: number } = {}): Promise<Ticket[]> {
  return ctx.store.models.Ticket.find({}).sort({ updatedAt: -1 }).limit(opts.limit ?? 100).lean<Ticket[]>();
}

export async function ticketArticles(ctx: DomainContext, ticketId: Types.ObjectId): Promise<Article[]> {
  return ctx.store.models.Article.find({ ticketId }).sort({ createdAt: 1, _id: 1 }).lean<Article[]>();
}
