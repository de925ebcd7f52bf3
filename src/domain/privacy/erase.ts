import type { Types } from 'mongoose';
import { removeUnusedBlobs, type ReleasedBlob } from '../../db/blob-references.ts';
import { toBuffer } from '../../db/blobs.ts';
import type { Article } from '../../db/models/article.ts';
import type { TicketEvent } from '../../db/models/engine.ts';
import type { OpsEvent } from '../../db/models/ops-event.ts';
import type { OutboxMail } from '../../db/models/outbox.ts';
import type { ErasureCounts } from '../../db/models/privacy.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import type { DomainContext } from '../context.ts';
import { recordOnce } from '../engine/transition.ts';
import { rewriteTicketListEntry } from '../ticket-list.ts';
import { isOwnArticle, ownArticles, rawMailsFrom } from './footprint.ts';
import { ERASED_NAME, sameValue, Scrubber } from './scrub.ts';
import type { DataSubject } from './subject.ts';

/** Whom to erase, as recorded in the erasure request, and who carries it out. */
export interface ErasureTarget {
  /** The erasure request's id: the operation id of the audit entries it leaves. */
  id: string;
  sub: string | null;
  addresses: string[];
  pseudonym: string;
  by: { kind: 'agent' | 'grace' | 'cli'; sub: string | null; name: string };
}

type Update = { _id: unknown; set: Record<string, unknown> };

/** What an erasure will change, read before anything is written (and all a dry run shows). */
export interface ErasurePlan {
  target: ErasureTarget;
  articles: (Update & { ticketId: Types.ObjectId; own: boolean })[];
  tickets: { ticket: Ticket; set: Record<string, unknown>; own: number }[];
  events: Update[];
  inbox: Update[];
  outbox: Update[];
  /** The operations log (opsevents): the one change to it an erasure makes. */
  ops: Update[];
  released: ReleasedBlob[];
  counts: ErasureCounts;
}

/** Only what differs from the stored document. */
function changed(doc: Record<string, unknown>, wanted: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(wanted).filter(([k, v]) => !sameValue(doc[k] ?? null, v ?? null)));
}

/**
 * Reads what an erasure touches: the person's own articles (text, HTML, attachments go; the
 * article stays, written by the pseudonym), the tickets and other people's articles and audit
 * entries that name them (name and address become the pseudonym), the raw mails they sent,
 * and the outbound mail addressed to them or carrying their words. The pseudonym itself counts
 * as theirs, so a run that stopped half-way is finished by the next.
 */
export async function planErasure(ctx: DomainContext, target: ErasureTarget): Promise<ErasurePlan> {
  const { Article, Ticket, TicketEvent, Outbox } = ctx.store.models;
  const now = ctx.now();
  const subject: DataSubject = { sub: target.sub, user: null, addresses: [...new Set([...target.addresses, target.pseudonym])] };
  const addrs = subject.addresses;
  const own = await ownArticles(ctx, subject);
  const mentioned = await Article.find({ $or: [{ 'to.address': { $in: addrs } }, { 'cc.address': { $in: addrs } }] }, { ticketId: 1 }).lean<Pick<Article, 'ticketId'>[]>();
  const acted = await TicketEvent.find({ $or: [{ 'actor.address': { $in: addrs } }, ...(target.sub ? [{ 'actor.sub': target.sub }] : [])] }, { ticketId: 1 }).lean<Pick<TicketEvent, 'ticketId'>[]>();
  const ticketOr: Record<string, unknown>[] = [{ 'requester.address': { $in: addrs } }, { participants: { $in: addrs } }, { 'assignee.address': { $in: addrs } }];
  if (target.sub) ticketOr.push({ ownerSub: target.sub });
  const linked = [...own, ...mentioned, ...acted].map((x) => x.ticketId);
  if (linked.length) ticketOr.push({ _id: { $in: linked } });
  const tickets = await Ticket.find({ $or: ticketOr }).sort({ number: 1 }).lean<Ticket[]>();
  const ticketIds = tickets.map((t) => t._id);
  const articles = ticketIds.length ? await Article.find({ ticketId: { $in: ticketIds } }).sort({ createdAt: 1, _id: 1 }).lean<Article[]>() : [];

  const names = [...own.map((a) => a.from?.name ?? ''), ...tickets.filter((t) => addrs.includes(t.requester.address)).map((t) => t.requester.name)];
  if (target.sub) names.push((await ctx.store.models.User.findById(target.sub, { name: 1 }).lean<{ name?: string }>())?.name ?? '');
  const scrub = new Scrubber(target.addresses, names.filter((n) => n !== ERASED_NAME), target.sub, target.pseudonym);
  const note = `Text and attachments erased at the writer's request on ${now.toISOString().slice(0, 10)}.`;
  const counts: ErasureCounts = { articles: 0, attachments: 0, tickets: tickets.length, rawMails: 0, outbound: 0, blobs: 0 };
  const plan: ErasurePlan = { target, articles: [], tickets: [], events: [], inbox: [], outbox: [], ops: [], released: [], counts };

  const ownOnTicket = new Map<string, number>();
  for (const a of articles) {
    const mine = isOwnArticle(subject, a);
    const wanted: Record<string, unknown> = { to: scrub.deep(a.to), cc: scrub.deep(a.cc), key: scrub.text(a.key) };
    if (mine) {
      counts.articles++;
      counts.attachments += a.attachments.length;
      ownOnTicket.set(String(a.ticketId), (ownOnTicket.get(String(a.ticketId)) ?? 0) + 1);
      plan.released.push(...a.attachments.map((f) => ({ sha256: f.sha256, size: f.size })));
      Object.assign(wanted, { text: '', html: null, subject: '', attachments: [], authResults: null, senderAuth: null, authorSub: null, from: { address: target.pseudonym, name: ERASED_NAME } });
      if (a.from?.address !== target.pseudonym) wanted.note = note;
    } else {
      Object.assign(wanted, { text: scrub.text(a.text), html: a.html ? scrub.text(a.html) : a.html, subject: scrub.text(a.subject), from: a.from ? scrub.person(a.from) : null, senderAuth: scrub.deep(a.senderAuth ?? null) });
    }
    const set = changed(a as unknown as Record<string, unknown>, wanted);
    if (Object.keys(set).length) plan.articles.push({ _id: a._id, ticketId: a.ticketId, own: mine, set });
  }

  for (const t of tickets) {
    const wanted: Record<string, unknown> = {
      requester: scrub.person(t.requester),
      participants: scrub.list(t.participants),
      verifiedParticipants: scrub.list(t.verifiedParticipants ?? []),
      assignee: t.assignee ? scrub.person(t.assignee) : null,
      ownerSub: target.sub && t.ownerSub === target.sub ? null : t.ownerSub,
      subject: scrub.text(t.subject),
      originKey: scrub.text(t.originKey),
      recentOps: scrub.deep(t.recentOps),
      lastDeliveryFailure: t.lastDeliveryFailure ? { ...t.lastDeliveryFailure, to: scrub.list(t.lastDeliveryFailure.to), error: scrub.text(t.lastDeliveryFailure.error) } : null,
    };
    plan.tickets.push({ ticket: t, set: changed(t as unknown as Record<string, unknown>, wanted), own: ownOnTicket.get(String(t._id)) ?? 0 });
  }

  const events = ticketIds.length ? await TicketEvent.find({ ticketId: { $in: ticketIds } }).lean<TicketEvent[]>() : [];
  for (const e of events) {
    const theirs = (!!target.sub && e.actor.sub === target.sub) || scrub.isTheirs(e.actor.address);
    const wanted = {
      actor: theirs ? { address: target.pseudonym, name: ERASED_NAME, sub: null, role: e.actor.role } : e.actor,
      op: scrub.text(e.op),
      reason: e.reason ? scrub.text(e.reason) : e.reason,
      changes: scrub.deep(e.changes),
      set: scrub.deep(e.set),
    };
    const set = changed(e as unknown as Record<string, unknown>, wanted);
    if (Object.keys(set).length) plan.events.push({ _id: e._id, set });
  }

  const erasedItems = new Set<string>();
  for (const item of await rawMailsFrom(ctx, subject, own)) {
    erasedItems.add(String(item._id));
    if (!item.rawRemoved) counts.rawMails++;
    plan.released.push({ sha256: item.rawSha256, size: item.size });
    const envelope = { ...item.envelope, mailFrom: item.envelope.mailFrom ? scrub.text(item.envelope.mailFrom) : item.envelope.mailFrom, rcptTo: scrub.list(item.envelope.rcptTo), clientIp: null, helo: null };
    const open = item.state === 'held' || item.state === 'pending';
    const wanted: Record<string, unknown> = {
      envelope,
      heldAddress: item.heldAddress ? scrub.text(item.heldAddress) : null,
      ...(item.rawRemoved?.reason === 'erasure' ? {} : { raw: null, rawRemoved: { at: now, reason: 'erasure' } }),
      note: open ? 'erased at the sender’s request before it was ticketed' : item.note ? scrub.text(item.note) : item.note,
      ...(open ? { state: 'ignored' } : {}),
      lastError: item.lastError ? scrub.text(item.lastError) : item.lastError,
    };
    const set = changed(item as unknown as Record<string, unknown>, wanted);
    // Read without its bytes: whether the item still holds them is not known here.
    if ('raw' in wanted) set.raw = null;
    if (Object.keys(set).length) plan.inbox.push({ _id: item._id, set });
  }

  const ownIds = new Set(own.map((a) => String(a._id)));
  const erasedMails = new Set<string>();
  const mailOr: Record<string, unknown>[] = [{ to: { $in: addrs } }, { cc: { $in: addrs } }, { envelopeTo: { $in: addrs } }];
  if (ownIds.size) mailOr.push({ articleId: { $in: own.map((a) => a._id) } });
  if (ticketIds.length) mailOr.push({ ticketId: { $in: ticketIds } });
  for (const m of await Outbox.find({ $or: mailOr }).lean<OutboxMail[]>()) {
    // Addressed to them, or carrying their words: emptied. Other mail of their tickets (to the
    // units, to other participants) keeps its words with their name and address replaced; its
    // MIME copy cannot be edited safely and goes when it names them.
    const theirs = [...m.to, ...m.cc, ...(m.envelopeTo ?? [])].some((a) => scrub.isTheirs(a)) || (!!m.articleId && ownIds.has(String(m.articleId)));
    if (theirs) erasedMails.add(String(m._id));
    const wanted: Record<string, unknown> = {
      to: scrub.list(m.to),
      cc: scrub.list(m.cc),
      envelopeTo: scrub.list(m.envelopeTo ?? []),
      key: scrub.text(m.key),
      from: scrub.text(m.from),
      headers: scrub.deep(m.headers),
      lastError: theirs && m.state === 'queued' ? 'not sent: the recipient’s personal data was erased' : m.lastError ? scrub.text(m.lastError) : m.lastError,
      response: m.response ? scrub.text(m.response) : m.response,
    };
    if (theirs) {
      if (m.contentRemoved?.reason !== 'erasure') counts.outbound++;
      Object.assign(wanted, { subject: '(removed)' }, m.contentRemoved?.reason === 'erasure' ? {} : { text: '', html: null, raw: null, contentRemoved: { at: now, reason: 'erasure' } });
      // Mail still waiting is not sent any more: it would go to a person who asked to be forgotten, or carry their words.
      if (m.state === 'queued') wanted.state = 'failed';
    } else {
      Object.assign(wanted, { subject: scrub.text(m.subject), text: scrub.text(m.text), html: m.html ? scrub.text(m.html) : m.html });
      if (m.raw && scrub.mentions(toBuffer(m.raw).toString('latin1'))) wanted.raw = null;
    }
    const { raw: _raw, ...rest } = m;
    const set = changed(rest as unknown as Record<string, unknown>, wanted);
    if ('raw' in wanted && wanted.raw === null && m.raw) set.raw = null;
    if (Object.keys(set).length) plan.outbox.push({ _id: m._id, set });
  }

  // The operations log names what was acted on (a held mail's sender, a failed mail's
  // recipients) and who acted: entries about what was erased lose their label.
  for (const e of await ctx.store.models.OpsEvent.find({}).lean<OpsEvent[]>()) {
    const erased = (e.target.kind === 'inbox' && erasedItems.has(e.target.id)) || (e.target.kind === 'outbox' && erasedMails.has(e.target.id));
    const theirs = (!!target.sub && e.actor.sub === target.sub) || scrub.isTheirs(e.actor.address);
    const wanted = {
      target: { ...e.target, label: erased ? '(erased)' : scrub.text(e.target.label) },
      actor: theirs ? { address: target.pseudonym, name: ERASED_NAME, sub: null } : e.actor,
      reason: e.reason ? scrub.text(e.reason) : e.reason,
    };
    const set = changed(e as unknown as Record<string, unknown>, wanted);
    if (Object.keys(set).length) plan.ops.push({ _id: e._id, set });
  }
  return plan;
}

/**
 * Carries out a plan: the identity and its bindings first (so that the old binding signs in
 * as nobody from this moment), then the records, then the audit entries, then the blobs
 * nothing refers to any more. Every step is a write by _id that a re-run repeats harmlessly.
 */
export async function applyErasure(ctx: DomainContext, plan: ErasurePlan): Promise<ErasureCounts> {
  const { target } = plan;
  const m = ctx.store.models;
  const addrs = target.addresses;
  if (target.sub) {
    await m.Session.deleteMany({ 'data.sub': target.sub });
    await m.AddressBinding.deleteMany({ sub: target.sub });
    await m.User.deleteOne({ _id: target.sub });
    await m.TicketList.deleteOne({ _id: target.sub });
  }
  await m.MailToken.deleteMany({ $or: [{ address: { $in: addrs } }, ...(target.sub ? [{ sub: target.sub }] : [])] });
  await m.HeldMail.deleteMany({ address: { $in: addrs } });
  await m.HeldSender.deleteMany({ _id: { $in: addrs } });

  for (const u of plan.articles) await m.Article.updateOne({ _id: u._id }, { $set: u.set });
  for (const u of plan.events) await m.TicketEvent.updateOne({ _id: u._id as string }, { $set: u.set });
  for (const u of plan.inbox) await m.Inbox.updateOne({ _id: u._id }, { $set: u.set });
  for (const u of plan.outbox) await m.Outbox.updateOne({ _id: u._id }, { $set: u.set });
  for (const u of plan.ops) await m.OpsEvent.updateOne({ _id: u._id }, { $set: u.set });

  const actor = { address: null, name: target.by.kind === 'grace' ? 'helpgate (grace period ended)' : target.by.name, sub: target.by.sub, role: target.by.kind === 'agent' ? ('agent' as const) : ('system' as const) };
  for (const { ticket, set, own } of plan.tickets) {
    if (Object.keys(set).length) await m.Ticket.updateOne({ _id: ticket._id }, { $set: set });
    const fresh = { ...ticket, ...set } as Ticket;
    // Another owner's list may hold the erased words in its search text: written anew.
    if (fresh.ownerSub) {
      const texts = await m.Article.find({ ticketId: ticket._id, internal: { $ne: true } }, { subject: 1, text: 1 }).sort({ createdAt: 1, _id: 1 }).lean<Pick<Article, 'subject' | 'text'>[]>();
      await rewriteTicketListEntry(ctx, fresh, texts.flatMap((a) => [a.subject, a.text]));
    }
    await recordOnce(ctx, fresh, {
      action: 'erase',
      op: `erasure:${target.id}`,
      actor,
      channel: target.by.kind === 'agent' ? 'web' : 'system',
      changes: [{ field: 'personal data', from: null, to: `a person's data erased on request: ${own} of their messages emptied, name and address replaced by ${target.pseudonym}` }],
    });
  }
  const blobs = await removeUnusedBlobs(ctx.store, plan.released);
  const counts = { ...plan.counts, blobs };
  ctx.log.info({ erasure: target.id, by: target.by.kind, ...counts }, 'personal data erased');
  return counts;
}
