import type { Article } from '../../db/models/article.ts';
import type { InboxItem } from '../../db/models/inbox.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import type { DomainContext } from '../context.ts';
import { portalParticipants } from '../portal/access.ts';
import type { DataSubject } from './subject.ts';

/**
 * Where a person's data lies, found by their identifier and addresses. These queries filter on
 * fields without an index, so they read whole collections: meant for the rare export or
 * erasure, not for a page.
 */

/** An article the person wrote: signed in as them, or from one of their addresses. */
export function isOwnArticle(subject: DataSubject, a: Pick<Article, 'authorSub' | 'from'>): boolean {
  return (!!subject.sub && a.authorSub === subject.sub) || (!!a.from?.address && subject.addresses.includes(a.from.address.toLowerCase()));
}

/**
 * Tickets whose requester (owner or address) or participant they are, participants counted as
 * the portal counts them (portalParticipants: with UNAUTHENTICATED_SENDERS=flag only those a
 * proven sender named): an archive shows no ticket the portal would not.
 */
export async function ticketsAsRequesterOrParticipant(ctx: DomainContext, subject: DataSubject): Promise<Ticket[]> {
  const or: Record<string, unknown>[] = [{ 'requester.address': { $in: subject.addresses } }, { participants: { $in: subject.addresses } }];
  if (subject.sub) or.push({ ownerSub: subject.sub });
  const found = await ctx.store.models.Ticket.find({ $or: or }).sort({ number: 1 }).lean<Ticket[]>();
  return found.filter(
    (t) => (!!subject.sub && t.ownerSub === subject.sub) || subject.addresses.includes(t.requester.address) || portalParticipants(ctx, t).some((p) => subject.addresses.includes(p)),
  );
}

/** Every article they wrote, on any ticket. */
export async function ownArticles(ctx: DomainContext, subject: DataSubject): Promise<Article[]> {
  const or: Record<string, unknown>[] = [{ 'from.address': { $in: subject.addresses } }];
  if (subject.sub) or.push({ authorSub: subject.sub });
  return ctx.store.models.Article.find({ $or: or }).sort({ createdAt: 1, _id: 1 }).lean<Article[]>();
}

/**
 * The mail they sent as we received it: the inbox items of their articles, their held mail,
 * and items whose envelope sender is one of their addresses. Without the raw bytes (see
 * inboxRaw); sorted by arrival.
 */
export async function rawMailsFrom(ctx: DomainContext, subject: DataSubject, articles: readonly Article[]): Promise<InboxItem[]> {
  const ids = articles.map((a) => a.inboxId).filter((id): id is NonNullable<typeof id> => !!id);
  const or: Record<string, unknown>[] = [{ heldAddress: { $in: subject.addresses } }, { 'envelope.mailFrom': { $in: subject.addresses } }];
  if (ids.length) or.push({ _id: { $in: ids } });
  return ctx.store.models.Inbox.find({ $or: or }, { raw: 0 }).sort({ receivedAt: 1, _id: 1 }).lean<InboxItem[]>();
}
