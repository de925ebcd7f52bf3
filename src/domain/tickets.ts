import type { Types } from 'mongoose';
import type { Article } from '../db/models/article.ts';
import type { Priority, Ticket } from '../db/models/ticket.ts';
import { idFor } from '../db/ids.ts';
import { isDuplicateKeyError } from '../errors/errors.ts';
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
  su: string;
  referredTicket?: number | null;
  /** The closed ticket a late reply came to. */
  previousTicket?: number | null;
  rootMessageId?: string | null;
}

/** How long a ticket creation may hold its lock before another run may take over. */
const CREATE_LOCK_MS = 30_000;

/** The next number each store will try first (per process; a collision moves it on). */
const nextNumberGuess = new WeakMap<object, number>();

async function highestReservedNumber(ctx: DomainContext): Promise<number> {
  const last = await ctx.store.models.TicketNumber.findOne({}, { _id: 1 }).sort({ _id: -1 }).lean<{ _id: number }>();
  return Math.max(FIRST_TICKET_NUMBER - 1, last?._id ?? 0);
}

/**
 * Reserves the next free ticket number for `ticketId`. A number is taken by inserting its
 * reservation (_id = number): an insert into the _id index is atomic on MongoDB and FerretDB
 * alike, whereas a counter's $inc is not atomic on FerretDB 1.24. Each process remembers where
 * it stopped, so a number costs one insert; a collision (another process took it) tries the
 * next one, and after a run of collisions the highest reservation is read again.
 */
async function reserveTicketNumber(ctx: DomainContext, ticketId: Types.ObjectId): Promise<number> {
  const { TicketNumber } = ctx.store.models;
  let number = nextNumberGuess.get(ctx.store) ?? (await highestReservedNumber(ctx)) + 1;
  for (let attempt = 1; attempt <= 200; attempt++) {
    try {
      await TicketNumber.collection.insertOne({ _id: number, ticketId } as never);
      nextNumberGuess.set(ctx.store, number + 1);
      return number;
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      // Reserved by an earlier run for this very ticket (a crash before the ticket was written).
      const holder = await TicketNumber.findById(number).lean<{ ticketId: Types.ObjectId }>();
      if (holder && String(holder.ticketId) === String(ticketId)) return number;
      number = attempt % 10 === 0 ? (await highestReservedNumber(ctx)) + 1 : number + 1;
    }
  }
  throw new Error('could not reserve a ticket number after 200 attempts');
}

/**
 * Creates a ticket, or returns the one this origin already created: the ticket's _id derives
 * from its originKey, so a re-run after a crash finds it by _id and no duplicate can appear.
 */
export async function createTicket(ctx: DomainContext, input: NewTicket): Promise<{ ticket: Ticket; created: boolean }> {
  const { Ticket, Lock } = ctx.store.models;
  const _id = idFor('ticket', input.originKey);
  const existing = await Ticket.findById(_id).lean<Ticket>();
  if (existing) return { ticket: existing, created: false };
  // Two runs of one message at once (a duplicate delivery) must not both reserve a number:
  // the one that inserts the creation lock creates the ticket, the other waits for it. A lock
  // left by a crashed run lapses after CREATE_LOCK_MS and a re-run takes over.
  const lockId = `create-ticket:${String(_id)}`;
  // Set when an earlier run of this creation left its lock behind (it crashed or failed):
  // that run may have reserved a number already, and this run must reuse it, not leave a gap.
  let earlierRun = false;
  for (;;) {
    try {
      await Lock.collection.insertOne({ _id: lockId, owner: 'createTicket', expiresAt: new Date(ctx.now().getTime() + CREATE_LOCK_MS) } as never);
      break;
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
    }
    const lock = await Lock.findById(lockId).lean<{ expiresAt: Date }>();
    const ticket = await Ticket.findById(_id).lean<Ticket>();
    if (ticket) return { ticket, created: false };
    if (lock && lock.expiresAt < ctx.now()) {
      earlierRun = true;
      await Lock.deleteOne({ _id: lockId });
    } else await new Promise((resolve) => setTimeout(resolve, 50));
  }
  let settled = false;
  try {
    const again = await Ticket.findById(_id).lean<Ticket>();
    if (again) {
      settled = true;
      return { ticket: again, created: false };
    }
    const number = (earlierRun ? await numberReservedFor(ctx, _id) : null) ?? (await reserveTicketNumber(ctx, _id));
    // The first-response target (SLA) and its escalation timer, written before the ticket.
    const now = ctx.now();
    const slaDue = addWorkingDays(now, ctx.config.timers.firstResponse[input.priority ?? 'less urgent']);
    await ctx.store.models.Job.collection
      .insertOne({ _id: `sla:${String(_id)}@0`, kind: 'sla', ticketId: _id, ticketNumber: number, state: 'new', stateVersion: 0, due: slaDue } as never)
      .catch((err: unknown) => {
        if (!isDuplicateKeyError(err)) throw err;
      });
    try {
      const doc = await Ticket.create({
        ...input,
        _id,
        number,
        state: 'new',
        stateSince: now,
        unitsSeen: [input.su],
        slaDue,
        referredTicket: input.referredTicket ?? null,
        previousTicket: input.previousTicket ?? null,
        rootMessageId: input.rootMessageId ?? null,
        requesterTip: input.rootMessageId ?? null,
      });
      ctx.log.info({ ticket: number, su: input.su }, 'ticket created');
      const ticket = doc.toObject() as Ticket;
      await recordInTicketList(ctx, ticket);
      settled = true;
      return { ticket, created: true };
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      const ticket = await Ticket.findById(_id).lean<Ticket>();
      if (!ticket) throw err;
      settled = true;
      return { ticket, created: false };
    }
  } finally {
    // A failed run leaves its lock, expired at once, so that the re-run knows to look for the
    // number this run may have reserved. (If the database is gone, the lock lapses by itself.)
    if (settled) await Lock.deleteOne({ _id: lockId });
    else await Lock.updateOne({ _id: lockId }, { $set: { expiresAt: new Date(0) } }).catch(() => undefined);
  }
}

/** The number an earlier, interrupted run reserved for this ticket, if any. */
async function numberReservedFor(ctx: DomainContext, ticketId: Types.ObjectId): Promise<number | null> {
  const held = await ctx.store.models.TicketNumber.findOne({ ticketId }, { _id: 1 }).lean<{ _id: number }>();
  return held?._id ?? null;
}

export type NewArticle = Omit<Article, '_id' | 'createdAt' | 'updatedAt' | 'ticketId' | 'ticketNumber'>;

/** Adds an article once per idempotency key; a re-run returns the stored one. */
export async function addArticle(ctx: DomainContext, ticket: Ticket, input: Partial<NewArticle> & Pick<NewArticle, 'key' | 'direction' | 'authorRole'>): Promise<{ article: Article; created: boolean }> {
  const { Article, Ticket } = ctx.store.models;
  // The _id derives from the key: a re-run collides on the _id index and finds the stored
  // article by _id (FerretDB 1.24 answers no other filter from an index).
  const _id = idFor('article', input.key);
  try {
    const doc = await Article.create({ ...input, _id, ticketId: ticket._id, ticketNumber: ticket.number });
    const slot = await takeArticleSlot(ctx, ticket, _id);
    const fresh = await Ticket.findOneAndUpdate({ _id: ticket._id }, { $set: { updatedAt: ctx.now(), articleCount: slot } }, { returnDocument: 'after' }).lean<Ticket>();
    // An internal note's words must not become searchable in the requester's list.
    if (fresh) await recordInTicketList(ctx, fresh, input.internal ? '' : `${input.subject ?? ''} ${input.text ?? ''}`);
    return { article: { ...(doc.toObject() as Article), slot }, created: true };
  } catch (err) {
    if (!isDuplicateKeyError(err)) throw err;
    const article = await Article.findById(_id).lean<Article>();
    if (!article) throw err;
    // A crash between the article and its slot: the re-run gives it one.
    if (article.slot === null || article.slot === undefined) article.slot = await takeArticleSlot(ctx, ticket, _id);
    return { article, created: false };
  }
}

/**
 * Puts an article in its ticket's order: the first free slot after the count the caller's copy
 * of the ticket knows (a stale copy only means a few more tries; a slot is taken by insert).
 */
async function takeArticleSlot(ctx: DomainContext, ticket: Pick<Ticket, '_id' | 'articleCount'>, articleId: Types.ObjectId): Promise<number> {
  const { ArticleRef, Article } = ctx.store.models;
  for (let n = (ticket.articleCount ?? 0) + 1; ; n++) {
    try {
      await ArticleRef.collection.insertOne({ _id: `${String(ticket._id)}#${n}`, articleId } as never);
      await Article.updateOne({ _id: articleId }, { $set: { slot: n } });
      return n;
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
    }
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

/** The ticket with this number, through its reservation (a look-up by _id on both). */
export async function findTicketByNumber(ctx: DomainContext, number: number): Promise<Ticket | null> {
  if (!Number.isSafeInteger(number)) return null;
  const reservation = await ctx.store.models.TicketNumber.findById(number).lean<{ ticketId: Types.ObjectId }>();
  if (!reservation) return null;
  const ticket = await ctx.store.models.Ticket.findById(reservation.ticketId).lean<Ticket>();
  return ticket && ticket.number === number ? ticket : null;
}

/** An article by its idempotency key. */
export async function findArticleByKey(ctx: DomainContext, key: string): Promise<Article | null> {
  return ctx.store.models.Article.findById(idFor('article', key)).lean<Article>();
}

export async function listTickets(ctx: DomainContext, opts: { limit?: number } = {}): Promise<Ticket[]> {
  return ctx.store.models.Ticket.find({}).sort({ updatedAt: -1 }).limit(opts.limit ?? 100).lean<Ticket[]>();
}

/**
 * A ticket's articles, oldest first, read through their slots by _id: the slots the ticket
 * knows of (its articleCount) in parallel batches, then one by one until the first free slot
 * (a slot taken after the count was written). A free slot is the costly look-up on FerretDB
 * (it reads the whole table), so there is normally just one.
 */
export async function ticketArticles(ctx: DomainContext, ticket: Pick<Ticket, '_id' | 'articleCount'>): Promise<Article[]> {
  const { ArticleRef, Article } = ctx.store.models;
  const ticketId = ticket._id;
  const ref = (n: number) => ArticleRef.findById(`${String(ticketId)}#${n}`).lean<{ articleId: Types.ObjectId }>();
  const ids: string[] = [];
  const known = ticket.articleCount ?? 0;
  for (let start = 1; start <= known; start += 8) {
    const refs = await Promise.all(Array.from({ length: Math.min(8, known - start + 1) }, (_, i) => ref(start + i)));
    for (const r of refs) if (r) ids.push(String(r.articleId));
  }
  for (let n = known + 1; ; n++) {
    const r = await ref(n);
    if (!r) break;
    ids.push(String(r.articleId));
  }
  const unique = [...new Set(ids)];
  const articles = (await Promise.all(unique.map((id) => Article.findById(id).lean<Article>()))).filter((a): a is Article => !!a);
  return articles.sort((a, b) => new Date(a.createdAt).getTime() - new Date(b.createdAt).getTime() || String(a._id).localeCompare(String(b._id)));
}
