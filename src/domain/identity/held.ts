import { randomUUID } from 'node:crypto';
import { findByIds, Lease, readSlots } from '../../db/coordination/index.ts';
import type { HeldMail, HeldSender } from '../../db/models/held.ts';
import type { InboxItem } from '../../db/models/inbox.ts';
import { errorMessage, NotFoundError } from '../../errors/errors.ts';
import { isQueued } from '../../mail/send/outbox.ts';
import type { DomainContext } from '../context.ts';
import { requeueInboxItems } from '../ingest/queue.ts';
import { withinRateLimit } from '../rate-limit.ts';
import { bindAddress, userForAddress } from './bindings.ts';
import { HELD_ANSWER_WINDOW_MS } from './hold.ts';
import { sendNotice } from './notices.ts';
import { findToken, spendToken } from './tokens.ts';

const DAY = 86_400_000;
/** How long a release or an expiry run keeps an address to itself. */
export const ADDRESS_LOCK_MS = 60_000;
/** How long a release waits for a running expiry (or another release) of the same address. */
export const RELEASE_WAIT_MS = 10_000;

/** `released`: how many held mails are now on their way to become tickets. */
export type ReleaseResult = { ok: true; address: string; released: number } | { ok: false; reason: 'unknown' | 'used' | 'expired' | 'taken' };

/**
 * The sign-in link of a held sender, used by `sub` (who has just signed in): binds the address
 * to them (they proved they read its mail) and turns every mail held from it into tickets, in
 * the order the mails arrived. The link works once, also against two requests at once.
 */
/** The address a sign-in link was sent to, while the link is still unused and valid; else null. */
export async function signInLinkAddress(ctx: DomainContext, token: string): Promise<string | null> {
  const doc = await findToken(ctx, token, 'sign-in-link');
  if (!doc || doc.usedAt || doc.expiresAt <= ctx.now()) return null;
  return doc.address;
}

export async function releaseHeldMail(ctx: DomainContext, sub: string, token: string): Promise<ReleaseResult> {
  const doc = await findToken(ctx, token, 'sign-in-link');
  if (!doc) return { ok: false, reason: 'unknown' };
  // Checked before the link is spent, so that neither a mistake of the caller nor an address
  // bound elsewhere meanwhile uses it up.
  if (!(await ctx.store.models.User.findById(sub, { _id: 1 }).lean())) throw new NotFoundError('user', sub);
  const owner = await userForAddress(ctx, doc.address);
  if (owner && owner !== sub) return { ok: false, reason: 'taken' };
  const spent = await spendToken(ctx, doc, sub);
  if (spent !== 'spent') return { ok: false, reason: spent };
  if ((await bindAddress(ctx, sub, doc.address, 'sign-in-link')) === 'taken') return { ok: false, reason: 'taken' };
  const released = await releaseHeldMailOf(ctx, sub, doc.address);
  return { ok: true, address: doc.address, released };
}

/**
 * Turns the mail held from `address` into tickets once the address is bound to `sub`, by any
 * route (verified e-mail claim, confirmation link, sign-in link): the oldest held mail goes
 * back to the ingest queue, and the ingest of each released mail queues the next, so they
 * become tickets in the order they arrived. Returns how many mails are on their way (0 when
 * the address is not `sub`'s).
 */
export async function releaseHeldMailOf(ctx: DomainContext, sub: string, address: string): Promise<number> {
  if (!(await ctx.store.models.HeldSender.findById(address, { _id: 1 }).lean())) return 0;
  if ((await userForAddress(ctx, address)) !== sub) return 0;
  const leases = new Lease(ctx.store, ADDRESS_LOCK_MS);
  const owner = `release-${randomUUID()}`;
  const held = await leases.hold(`held:${address}`, owner, () => ctx.now(), RELEASE_WAIT_MS);
  // Without the lease after the wait (a holder that died keeps it up to two minutes): going on is
  // safe, since ingest is idempotent; the lease only keeps an expiry from overtaking us.
  if (!held) ctx.log.warn({ address }, 'releasing held mail without the address lease');
  try {
    return await releaseLocked(ctx, sub, address);
  } finally {
    if (held) await leases.release(held);
  }
}

/** Queues the oldest open held mail of the address for ingest (if it is not under way already). */
async function releaseLocked(ctx: DomainContext, sub: string, address: string): Promise<number> {
  const open = await openHeldMail(ctx, address);
  await queueForIngest(ctx, address, open.entries[0]);
  await ctx.store.models.HeldSender.updateOne({ _id: address }, { $set: { releasedAt: ctx.now(), releasedTo: sub }, $max: { settled: open.settledThrough } });
  ctx.log.info({ address, mails: open.entries.length }, 'held mail released');
  return open.entries.length;
}

async function queueForIngest(ctx: DomainContext, address: string, entry: OpenEntry | undefined): Promise<void> {
  if (!entry) return;
  if (entry.item.state === 'held') {
    const note = `held, released when ${address} was bound`;
    await ctx.store.models.Inbox.updateOne({ _id: entry.item._id }, { $set: { state: 'pending', attempts: 0, availableAt: ctx.now(), note, lastError: null } });
  }
  // Pending already: it keeps its queue entry if it has one (a worker has it), or gets one
  // back if a run stopped between the two writes.
  await requeueInboxItems(ctx, [entry.item._id]);
}

/**
 * Called by ingest when a released held mail (`done`) has been handled: queues the next held
 * mail of its address, while the address is bound.
 */
export async function releaseNextHeldMail(ctx: DomainContext, address: string, done: unknown): Promise<void> {
  if (!(await userForAddress(ctx, address))) return;
  const open = await openHeldMail(ctx, address);
  await queueForIngest(ctx, address, open.entries.find((e) => String(e.item._id) !== String(done)));
}

interface OpenEntry {
  record: HeldMail;
  item: InboxItem;
}

/**
 * The mail of `address` still waiting (held, or pending under a worker that has it right now),
 * each inbox item once, in arrival order; and the position up to which everything is settled.
 * The held list is read from the last settled position on; a mail held while we read is either
 * seen here or sees the binding (hold.ts).
 */
async function openHeldMail(ctx: DomainContext, address: string): Promise<{ entries: OpenEntry[]; settledThrough: number }> {
  const { HeldSender, HeldMail, Inbox } = ctx.store.models;
  const sender = await HeldSender.findById(address, { settled: 1 }).lean<Pick<HeldSender, 'settled'>>();
  let settledThrough = sender?.settled ?? 0;
  const records = await readSlots<HeldMail>(HeldMail, address, settledThrough);
  const items = await findByIds<InboxItem>(Inbox, records.map((r) => r.inboxId));
  const itemOf = new Map(items.map((i) => [String(i._id), i]));
  let prefixSettled = true;
  const entries = new Map<string, OpenEntry>();
  for (const record of records) {
    const item = itemOf.get(String(record.inboxId));
    const open = !!item && (item.state === 'held' || item.state === 'pending');
    if (!open && prefixSettled) settledThrough = record.n;
    else prefixSettled = false;
    if (open && !entries.has(String(item._id))) entries.set(String(item._id), { record, item });
  }
  const byArrival = (a: OpenEntry, b: OpenEntry) => new Date(a.item.receivedAt).getTime() - new Date(b.item.receivedAt).getTime() || String(a.item._id).localeCompare(String(b.item._id));
  return { entries: [...entries.values()].sort(byArrival), settledThrough };
}

/**
 * Expires held mail nobody claimed: each held mail older than HOLD_DAYS is marked `expired`
 * (kept until the retention rules remove it, never deleted here) and its sender gets one last
 * notice. Mail of an address bound meanwhile (a release that stopped half-way) is released
 * instead. Safe to run any number of times, from any number of processes. Returns the number of
 * mails expired.
 *
 * Cost: it reads the whole `heldsenders` collection (one small document per address ever held;
 * a filter reads all of them) and then only by _id. Meant for a periodic
 * sweep, not a request.
 */
export async function expireHeldMail(ctx: DomainContext): Promise<number> {
  const { HeldSender, HeldMail } = ctx.store.models;
  const leases = new Lease(ctx.store, ADDRESS_LOCK_MS);
  const owner = `expire-${randomUUID()}`;
  let expired = 0;
  for (const sender of await HeldSender.find({}, { settled: 1 }).lean<Pick<HeldSender, '_id' | 'settled'>[]>()) {
    const address = sender._id;
    if (!(await HeldMail.findById(`${address}#${(sender.settled ?? 0) + 1}`, { _id: 1 }).lean())) continue;
    // Busy addresses (a release running) are left for the next run.
    const held = await leases.tryHold(`held:${address}`, owner, ctx.now());
    if (!held) continue;
    try {
      const sub = await userForAddress(ctx, address);
      if (sub) await releaseLocked(ctx, sub, address);
      else expired += await expireLocked(ctx, address);
    } catch (err) {
      ctx.log.error({ address, err: errorMessage(err) }, 'held mail of this sender could not be expired');
    } finally {
      await leases.release(held);
    }
  }
  return expired;
}

async function expireLocked(ctx: DomainContext, address: string): Promise<number> {
  const { Inbox, HeldSender } = ctx.store.models;
  const { holdDays } = ctx.config;
  const now = ctx.now();
  const cutoff = now.getTime() - holdDays * DAY;
  const open = await openHeldMail(ctx, address);
  const old = open.entries.filter(({ item }) => item.state === 'held' && new Date(item.receivedAt).getTime() <= cutoff);
  if (!old.length) {
    await HeldSender.updateOne({ _id: address }, { $max: { settled: open.settledThrough } });
    return 0;
  }
  // The notice first, then the states: a run that stops in between finds the same mails held and
  // the notice (keyed by the oldest of them) queued already.
  const told = await noticeExpiry(ctx, address, old);
  const note = `held for ${holdDays} days, nobody signed in: not ticketed`;
  for (const { item } of old) await Inbox.updateOne({ _id: item._id }, { $set: { state: 'expired', note } });
  const allSettled = open.entries.every((e) => old.includes(e));
  const highest = Math.max(open.settledThrough, ...open.entries.map((e) => e.record.n));
  await HeldSender.updateOne(
    { _id: address },
    { $set: { expiredAt: now, ...(told ? { lastNoticeAt: now } : {}) }, $max: { settled: allSettled ? highest : open.settledThrough } },
  );
  ctx.log.info({ address, mails: old.length, notice: told }, 'held mail expired');
  return old.length;
}

/** The last notice to a sender whose held mail expired; none for automated mail (loop rules). */
async function noticeExpiry(ctx: DomainContext, address: string, old: OpenEntry[]): Promise<boolean> {
  const fromPeople = old.filter(({ record }) => !record.automated);
  if (!fromPeople.length || ctx.own.has(address)) return false;
  const key = `held-expired:${address}:${old[0]!.item._id}`;
  if (!(await isQueued(ctx.store, key)) && !(await withinRateLimit(ctx, `held-expired:${address}`, 1, HELD_ANSWER_WINDOW_MS))) return false;
  const subjects = fromPeople.map(({ record }) => record.subject || '(no subject)');
  await sendNotice(ctx, {
    key,
    kind: 'held-expired',
    template: 'held-expired',
    to: address,
    subject: `Not turned into a ticket: ${subjects[0]}`,
    autoSubmitted: 'auto-generated',
    inReplyTo: fromPeople[0]!.record.messageId,
    view: { subjects, holdDays: ctx.config.holdDays },
  });
  return true;
}
