import { randomInt } from 'node:crypto';
import type { Model } from 'mongoose';
import { findByIds } from './ids.ts';
import { insertManyOnce } from './insert-once.ts';

/**
 * A work queue beside a collection of items (inbox, outbox). The queue collection is small: it
 * holds one entry per item that still needs work ({_id: item's _id, due, since}) and the claims
 * on those entries. A claim is the document "<item id>#<n>" ({entry, n, owner, expiresAt}): n
 * is the attempt. Exactly one worker can insert it; a claim whose expiresAt has passed (its
 * worker died) is taken over by inserting n+1. Settling an item deletes its entry together with
 * its claims in one command, so nothing in the queue outlives the work.
 *
 * Costs per batch of items: one insert for all claims, one update of all items, one delete of
 * all entries and claims (plus one update for retries). Nothing is written to the items when
 * they are claimed: the attempt number lives in the claim.
 */
export interface QueueEntry {
  _id: unknown;
  due: Date;
  since: Date;
}

interface ClaimDoc {
  _id: string;
  entry: unknown;
  n: number;
  owner: string;
  expiresAt: Date;
}

export interface Claimed<T> {
  doc: T;
  /** 1 for the first claim of the item since it was queued, 2 for the next, … */
  attempt: number;
}

export interface Settlement {
  id: unknown;
  /** Applied to the item (by _id). */
  update: Record<string, unknown>;
  /** When to try again; null when the item needs no more work. */
  retryAt: Date | null;
}

export interface WorkQueueOptions<T> {
  items: Model<any>;
  queue: Model<any>;
  /** How long a claim keeps an item from other workers if its worker dies. */
  leaseMs: number;
  owner: string;
  /** Whether the item still needs work (its entry may be stale: settled by a crashed run). */
  isClaimable: (doc: T) => boolean;
}

/** Due entries read per scan; claims take from them until they run out. */
const SCAN = 64;
/**
 * An entry whose item is still missing after this long was left by a failed write: dropped.
 * Writers put the entry first and the item second, and the time between the two can be long:
 * the SMTP intake's group commit waits for the batch before its own (each write bounded by the
 * driver's socket timeout of 30 s). So this is far longer than any write; were it shorter, an
 * entry could be dropped before its item is stored (requeueStranded repairs that too).
 */
const ORPHAN_ENTRY_MS = 10 * 60_000;

const claimId = (entry: unknown, n: number) => `${String(entry)}#${n}`;

/** Queues work for items (an item already queued keeps its entry). Write entries before items. */
export async function enqueueWork(queue: Model<any>, ids: unknown[], due: Date): Promise<void> {
  await insertManyOnce(
    queue,
    ids.map((_id) => ({ _id, due, since: due })),
  );
}

export interface StrandedWork {
  items: Model<any>;
  queue: Model<any>;
  /** Which items still need work (e.g. {state: 'pending'}). */
  needsWork: Record<string, unknown>;
  /** The item's field that says when it is due. */
  dueField: string;
}

/**
 * Re-queues items that need work but have no queue entry: left so by a crash between an item's
 * update and its entry, or by an entry dropped as an orphan before its item was stored. Items
 * are read before entries: an entry is always written before its item, so an item seen here had
 * its entry already; one missing on the second read was either lost or settled in between, and
 * re-queueing a settled item only costs the worker a look (it drops the entry). Three commands.
 */
export async function requeueStranded(spec: StrandedWork, now: Date): Promise<number> {
  const items = (await spec.items.collection.find(spec.needsWork as never, { projection: { _id: 1, [spec.dueField]: 1 } }).toArray()) as unknown as Record<string, unknown>[];
  if (!items.length) return 0;
  const queued = new Set((await spec.queue.collection.find({ due: { $exists: true } } as never, { projection: { _id: 1 } }).toArray()).map((e) => String(e._id)));
  const stranded = items.filter((i) => !queued.has(String(i._id)));
  if (!stranded.length) return 0;
  const dueOf = (i: Record<string, unknown>) => (i[spec.dueField] instanceof Date ? (i[spec.dueField] as Date) : now);
  return (await insertManyOnce(spec.queue, stranded.map((i) => ({ _id: i._id, due: dueOf(i), since: now })))).length;
}

export class WorkQueue<T extends { _id: unknown }> {
  private readonly buffer: QueueEntry[] = [];
  /** Entries this process holds right now, and the attempt it holds them with. */
  private readonly mine = new Map<string, number>();
  /** Entries this process claimed whose item was still being written: admitted at a later claim. */
  private readonly early = new Map<string, { entry: QueueEntry; n: number; expiresAt: number }>();
  /** Entries another worker holds, with the latest claim seen and when it lapses. */
  private readonly busy = new Map<string, { n: number; until: number; since: number }>();

  constructor(private readonly opts: WorkQueueOptions<T>) {}

  private get queue() {
    return this.opts.queue.collection;
  }

  get leaseMs(): number {
    return this.opts.leaseMs;
  }

  /**
   * Extends our claims on these items by a full lease from `now`, in one update, so that work
   * taking longer than a lease is not taken over while it runs. Only our own claim documents are
   * touched; a claim taken over meanwhile stays overtaken (settle sees the later one).
   */
  async renew(ids: unknown[], now: Date): Promise<void> {
    const claims = ids.flatMap((id) => {
      const n = this.mine.get(String(id));
      return n === undefined ? [] : [claimId(id, n)];
    });
    if (claims.length) await this.queue.updateMany({ _id: { $in: claims } } as never, { $set: { expiresAt: new Date(now.getTime() + this.opts.leaseMs) } });
  }

  /**
   * Claims up to `max` due items; none when no due item could be claimed. The lanes of one
   * process claim one after the other: racing each other for the same entries would only cost
   * failed claim inserts (other processes still race, and exactly one wins).
   */
  claim(max: number, now: Date): Promise<Claimed<T>[]> {
    const run = this.claiming.then(() => this.claimNow(max, now));
    this.claiming = run.catch(() => undefined);
    return run;
  }

  private claiming: Promise<unknown> = Promise.resolve();

  private async claimNow(max: number, now: Date): Promise<Claimed<T>[]> {
    // Candidates lost to other workers make room for the next ones, until the scan runs dry.
    for (let scans = 0; scans < 2; ) {
      if (!this.buffer.length) scans++;
      const candidates = await this.candidates(max, now.getTime());
      if (!candidates.length && !this.early.size) return [];
      const claimed = await this.claimFrom(candidates, now.getTime());
      if (claimed.length) return claimed;
    }
    return [];
  }

  private async claimFrom(fresh: QueueEntry[], t: number): Promise<Claimed<T>[]> {
    // Entries already claimed by us (their item was being written): no new claim needed.
    const early = [...this.early.values()];
    this.early.clear();
    // A claim kept since an earlier pass has less than a lease left: extend those with less
    // than two thirds left before handing them out (one write, and only when it matters).
    const lapsing = early.filter((x) => x.expiresAt - t < (this.opts.leaseMs * 2) / 3);
    if (lapsing.length) {
      const ids = lapsing.map((x) => x.entry._id);
      await this.renew(ids, new Date(t));
      for (const x of lapsing) x.expiresAt = t + this.opts.leaseMs;
    }
    const earlyExpiry = new Map(early.map((x) => [String(x.entry._id), x.expiresAt]));
    const candidates = fresh.filter((e) => !early.some((x) => String(x.entry._id) === String(e._id)));
    if (!candidates.length) return this.admit(early.map((x) => x.entry), new Map(early.map((x) => [String(x.entry._id), x.n])), t, earlyExpiry);
    const expiresAt = new Date(t + this.opts.leaseMs);
    const sinceOf = new Map(candidates.map((e) => [String(e._id), new Date(e.since).getTime()]));
    const want = candidates.map((e) => ({ entry: e._id, n: (this.busyWith(e)?.n ?? 0) + 1 }));
    const won = new Map<string, number>();
    let tries = want;
    for (let round = 0; round < 2 && tries.length; round++) {
      const docs = tries.map(({ entry, n }) => ({ _id: claimId(entry, n), entry, n, owner: this.opts.owner, expiresAt }));
      const inserted = new Set((await insertManyOnce(this.opts.queue, docs)).map(String));
      for (const d of docs) {
        if (!inserted.has(d._id)) continue;
        won.set(String(d.entry), d.n);
        // Ours from now: the other lanes of this process leave it alone.
        this.mine.set(String(d.entry), d.n);
      }
      const lost = tries.filter(({ entry, n }) => !inserted.has(claimId(entry, n)));
      tries = lost.length ? await this.lapsed(lost.map((l) => l.entry), sinceOf, t) : [];
    }
    for (const x of early) won.set(String(x.entry._id), x.n);
    if (!won.size) return [];
    try {
      return await this.admit([...early.map((x) => x.entry), ...candidates.filter((e) => won.has(String(e._id)))], won, t, earlyExpiry);
    } catch (err) {
      // Not handed out: let the claims lapse, and let other lanes see the entries again then.
      for (const key of won.keys()) this.mine.delete(key);
      throw err;
    }
  }

  /** What we know of another worker's claim on this entry (not on an earlier entry of the same item). */
  private busyWith(e: QueueEntry): { n: number } | undefined {
    const busy = this.busy.get(String(e._id));
    return busy && busy.since === new Date(e.since).getTime() ? busy : undefined;
  }

  /** Due entries to try: from the buffer, refilled by one scan when empty. */
  private async candidates(max: number, t: number): Promise<QueueEntry[]> {
    if (!this.buffer.length) {
      const due = await this.queue.find({ due: { $lte: new Date(t) } } as never).sort({ due: 1 }).limit(SCAN).toArray() as unknown as QueueEntry[];
      // Oldest first, but the first few shuffled, so parallel workers do not all fight over one.
      const head = due.splice(0, 8);
      while (head.length) due.unshift(head.splice(randomInt(head.length), 1)[0]!);
      this.buffer.push(...due);
    }
    const out: QueueEntry[] = [];
    while (this.buffer.length && out.length < max) {
      const e = this.buffer.shift()!;
      const key = String(e._id);
      const busy = this.busy.get(key);
      if (this.mine.has(key) || (busy && busy.until > t && busy.since === new Date(e.since).getTime())) continue;
      out.push(e);
    }
    return out;
  }

  /** Of entries whose claim we could not insert: those whose latest claim has lapsed, with the next attempt. */
  private async lapsed(entries: unknown[], sinceOf: Map<string, number>, t: number): Promise<{ entry: unknown; n: number }[]> {
    const claims = (await this.queue.find({ entry: { $in: entries } } as never).toArray()) as unknown as ClaimDoc[];
    const latest = new Map<string, ClaimDoc>();
    for (const c of claims) {
      const seen = latest.get(String(c.entry));
      if (!seen || seen.n < c.n) latest.set(String(c.entry), c);
    }
    const out: { entry: unknown; n: number }[] = [];
    for (const entry of entries) {
      const c = latest.get(String(entry));
      if (!c) continue; // settled meanwhile
      if (new Date(c.expiresAt).getTime() <= t) out.push({ entry, n: c.n + 1 });
      else this.busy.set(String(entry), { n: c.n, until: new Date(c.expiresAt).getTime(), since: sinceOf.get(String(entry)) ?? 0 });
    }
    return out;
  }

  /** Reads the claimed items and their entries; keeps those still due and still needing work. */
  private async admit(entries: QueueEntry[], won: Map<string, number>, t: number, earlyExpiry: Map<string, number>): Promise<Claimed<T>[]> {
    const ids = entries.map((e) => e._id);
    const [items, current] = await Promise.all([
      // The items by _id (their collection grows with history); the entries by `$in` (small).
      findByIds<T>(this.opts.items, ids),
      this.queue.find({ _id: { $in: ids } } as never).toArray() as unknown as Promise<QueueEntry[]>,
    ]);
    const itemOf = new Map(items.map((d) => [String(d._id), d]));
    const entryOf = new Map(current.map((e) => [String(e._id), e]));
    const out: Claimed<T>[] = [];
    const drop: unknown[] = [];
    const giveBack: string[] = [];
    for (const e of entries) {
      const key = String(e._id);
      const n = won.get(key)!;
      const entry = entryOf.get(key);
      const doc = itemOf.get(key);
      if (!entry || new Date(entry.due).getTime() > t) {
        // Settled or deferred by another worker since our scan.
        giveBack.push(claimId(e._id, n));
        this.mine.delete(key);
      } else if (doc && this.opts.isClaimable(doc)) {
        this.mine.set(key, n);
        this.busy.delete(key);
        out.push({ doc, attempt: n });
      } else if (doc || t - new Date(entry.since).getTime() > ORPHAN_ENTRY_MS) {
        // Finished already (a crash between settling the item and its entry), or an orphan.
        drop.push(...this.entryAndClaims(e._id, n));
        this.mine.delete(key);
      } else {
        // The item is being written right now (its entry is written first): keep the claim and
        // look again at the next claim.
        this.early.set(key, { entry: e, n, expiresAt: earlyExpiry.get(key) ?? t + this.opts.leaseMs });
      }
    }
    if (drop.length || giveBack.length) await this.queue.deleteMany({ _id: { $in: [...drop, ...giveBack] } } as never);
    return out;
  }

  private entryAndClaims(entry: unknown, n: number): unknown[] {
    return [entry, ...Array.from({ length: n }, (_, i) => claimId(entry, i + 1))];
  }

  /**
   * Records the outcome of claimed items: each item's update, then its entry deleted (done)
   * or made due again (retry). An item whose claim was taken over (its lease lapsed while we
   * worked) is left to the new holder, and one whose claim is gone (settled by that holder, or
   * its work withdrawn) is left as it is. When it throws, the items stay ours: call it again
   * with the same results, or forget them. The items first, then the queue: a crash in between
   * leaves entries whose items are settled, which the next claim drops.
   */
  async settle(results: Settlement[]): Promise<void> {
    if (!results.length) return;
    // Ours only while our claim is there and none after it: a claim taken over has a later
    // one, and one settled or withdrawn by someone else meanwhile has none left at all.
    const claims = (await this.queue.find({ entry: { $in: results.map((r) => r.id) } } as never, { projection: { entry: 1, n: 1 } }).toArray()) as unknown as ClaimDoc[];
    const found = new Set(claims.map((c) => String(c._id)));
    const overtaken = new Set(claims.filter((c) => c.n > (this.mine.get(String(c.entry)) ?? 0)).map((c) => String(c.entry)));
    const ours = results.filter((r) => {
      const n = this.mine.get(String(r.id));
      return n !== undefined && found.has(claimId(r.id, n)) && !overtaken.has(String(r.id));
    });
    if (ours.length) {
      await this.opts.items.bulkWrite(ours.map((r) => ({ updateOne: { filter: { _id: r.id }, update: r.update } })) as never, { ordered: false });
      const retries = ours.filter((r) => r.retryAt);
      if (retries.length) {
        // The claim stays (it carries the attempt count) and lapses when the item is due again.
        await this.queue.bulkWrite(
          retries.flatMap((r) => [
            { updateOne: { filter: { _id: r.id }, update: { $set: { due: r.retryAt } } } },
            { updateOne: { filter: { _id: claimId(r.id, this.mine.get(String(r.id))!) }, update: { $set: { expiresAt: r.retryAt } } } },
          ]) as never,
          { ordered: false },
        );
      }
      const done = ours.filter((r) => !r.retryAt).flatMap((r) => this.entryAndClaims(r.id, this.mine.get(String(r.id))!));
      if (done.length) await this.queue.deleteMany({ _id: { $in: done } } as never);
    }
    // Only once settled: a settlement that failed may be tried again (or the items forgotten).
    for (const r of results) {
      this.mine.delete(String(r.id));
      this.busy.delete(String(r.id));
    }
  }

  /** Lets go of claimed items without settling them (e.g. the worker stops): they lapse. */
  forget(ids: unknown[]): void {
    for (const id of ids) this.mine.delete(String(id));
  }
}

/** How many items a queue holds (its claims not counted). */
export function countQueued(queue: Model<any>): Promise<number> {
  return queue.countDocuments({ due: { $exists: true } });
}

/** Of these queued items, those no worker has claimed (so their work may still be withdrawn). */
export async function unclaimedOf(queue: Model<any>, ids: unknown[]): Promise<unknown[]> {
  if (!ids.length) return [];
  const claims = (await queue.collection.find({ entry: { $in: ids } } as never, { projection: { entry: 1 } }).toArray()) as unknown as ClaimDoc[];
  const claimed = new Set(claims.map((c) => String(c.entry)));
  return ids.filter((id) => !claimed.has(String(id)));
}

/** Withdraws queued work before it began: the items' entries and any claims on them. */
export async function dropWork(queue: Model<any>, ids: unknown[]): Promise<void> {
  if (!ids.length) return;
  await queue.deleteMany({ $or: [{ _id: { $in: ids } }, { entry: { $in: ids } }] } as never);
}
