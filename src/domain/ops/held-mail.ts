import { randomUUID } from 'node:crypto';
import { Lease, readSlots } from '../../db/coordination/index.ts';
import type { HeldMail, HeldSender } from '../../db/models/held.ts';
import type { InboxItem } from '../../db/models/inbox.ts';
import type { DomainContext } from '../context.ts';
import { ADDRESS_LOCK_MS, RELEASE_WAIT_MS } from '../identity/held.ts';
import { requeueInboxItems } from '../ingest/queue.ts';
import type { Viewer } from '../portal/access.ts';
import { mayOperate, opsActorOf } from './access.ts';
import { recordOpsEvent, type OpsActor } from './audit.ts';

const DAY = 86_400_000;
const isInboxId = (id: string) => /^[0-9a-f]{24}$/i.test(id);

export interface HeldRow {
  id: string;
  address: string;
  subject: string;
  receivedAt: Date;
  /** When the mail expires unless its sender signs in (HOLD_DAYS after it arrived). */
  expiresAt: Date;
  /** Why it got no sign-in link (automated mail), if so. */
  automated: string | null;
}

/** The result of an action on an item: done (with what to tell the agent), or refused and why. */
export type OpsResult = { ok: true; done: string } | { ok: false; reason: string };

/**
 * Mail held from senders bound to no identity (UNBOUND_SENDERS=hold), oldest first. The inbox
 * is read by state (on engines without index use, a scan of the inbox: a page an agent opens, not
 * a loop); subjects come from each address's held list, read from its settled position on.
 */
export async function listHeldMail(ctx: DomainContext, viewer: Viewer, limit = 200): Promise<HeldRow[] | null> {
  if (!mayOperate(ctx, viewer)) return null;
  const { Inbox, HeldSender, HeldMail } = ctx.store.models;
  const items = await Inbox.find({ state: 'held' }, { raw: 0 }).sort({ receivedAt: 1 }).limit(limit).lean<InboxItem[]>();
  const records = new Map<string, HeldMail>();
  for (const address of new Set(items.map((i) => i.heldAddress).filter((a): a is string => !!a))) {
    const sender = await HeldSender.findById(address, { settled: 1 }).lean<Pick<HeldSender, 'settled'>>();
    for (const r of await readSlots<HeldMail>(HeldMail, address, sender?.settled ?? 0)) records.set(String(r.inboxId), r);
  }
  return items.map((item) => {
    const record = records.get(String(item._id));
    const receivedAt = new Date(item.receivedAt);
    return {
      id: String(item._id),
      address: item.heldAddress ?? item.envelope.mailFrom ?? '',
      subject: record?.subject ?? '',
      receivedAt,
      expiresAt: new Date(receivedAt.getTime() + ctx.config.holdDays * DAY),
      automated: record?.automated ?? null,
    };
  });
}

/**
 * Changes one held mail under its address's lease, the one the sender's own release and the
 * expiry take (identity/held.ts), so that none of them acts on the mail at the same time.
 */
async function actOnHeld(ctx: DomainContext, id: string, change: Record<string, unknown>): Promise<{ item: InboxItem | null; refused?: string }> {
  const { Inbox } = ctx.store.models;
  const item = isInboxId(id) ? await Inbox.findById(id, { raw: 0 }).lean<InboxItem>() : null;
  if (!item || item.state !== 'held' || !item.heldAddress) return { item, refused: NOT_HELD };
  const leases = new Lease(ctx.store, ADDRESS_LOCK_MS);
  const held = await leases.hold(`held:${item.heldAddress}`, `ops-${randomUUID()}`, () => ctx.now(), RELEASE_WAIT_MS);
  if (!held) return { item, refused: `the mail of ${item.heldAddress} is being released or expired right now; look again in a minute` };
  try {
    // Only if still held under the lease: the sender's own release or an expiry may have come first.
    const { modifiedCount } = await Inbox.updateOne({ _id: item._id, state: 'held' }, { $set: change });
    return modifiedCount === 1 ? { item } : { item, refused: NOT_HELD };
  } finally {
    await leases.release(held);
  }
}

const NOT_HELD = 'it is no longer held (released, discarded or expired meanwhile)';
const who = (actor: OpsActor) => actor.address || actor.name || actor.sub || 'an agent';
const labelOf = (item: InboxItem | null, id: string) => item?.heldAddress ?? item?.envelope.mailFrom ?? id;

/**
 * An agent opens a ticket from a held mail without its sender signing in: the mail goes back to
 * ingest, which no longer holds it (releasedBy). Its sender gets the usual acknowledgement.
 */
export async function releaseHeldAsTicket(ctx: DomainContext, viewer: Viewer, id: string): Promise<OpsResult | null> {
  if (!mayOperate(ctx, viewer)) return null;
  const actor = opsActorOf(viewer);
  const { item, refused } = await actOnHeld(ctx, id, {
    state: 'pending',
    attempts: 0,
    availableAt: ctx.now(),
    lastError: null,
    releasedBy: who(actor),
    note: `held, released as a ticket by ${who(actor)}`,
  });
  if (!refused) await requeueInboxItems(ctx, [item!._id]);
  await recordOpsEvent(ctx, { action: 'held.release', target: { kind: 'inbox', id, label: labelOf(item, id) }, actor, channel: 'web', ...(refused ? { refused } : {}) });
  return refused ? { ok: false, reason: refused } : { ok: true, done: `The mail from ${item!.heldAddress} is being opened as a ticket.` };
}

/** An agent decides a held mail is not to become a ticket: it is kept, marked ignored, never answered. */
export async function discardHeld(ctx: DomainContext, viewer: Viewer, id: string): Promise<OpsResult | null> {
  if (!mayOperate(ctx, viewer)) return null;
  const actor = opsActorOf(viewer);
  const { item, refused } = await actOnHeld(ctx, id, { state: 'ignored', note: `held mail discarded by ${who(actor)}` });
  await recordOpsEvent(ctx, { action: 'held.discard', target: { kind: 'inbox', id, label: labelOf(item, id) }, actor, channel: 'web', ...(refused ? { refused } : {}) });
  return refused ? { ok: false, reason: refused } : { ok: true, done: `The mail from ${item!.heldAddress} was discarded.` };
}
