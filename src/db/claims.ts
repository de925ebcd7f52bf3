import { randomInt } from 'node:crypto';
import type { Model } from 'mongoose';
import { isDuplicateKeyError } from '../errors/errors.ts';

/**
 * Mutual exclusion that holds on MongoDB and on FerretDB alike.
 *
 * FerretDB 1.24 (SQLite) does not make findOneAndUpdate or a filtered update atomic between
 * connections: two workers can both "win" the same conditional update (measured: of 50
 * concurrent $inc, 13 survived). An insert into a unique index, however, is atomic on
 * every engine. So a worker claims a resource by inserting lock documents keyed by the
 * resource and a time slot: "<resource>@<slot>" and "<resource>@<slot+1>". Exactly one
 * worker can insert the first; holding both guarantees the claim lasts at least one whole
 * slot, and it lapses by itself after two (a dead worker needs no cleanup to be replaced).
 */
export class SlotLocks {
  constructor(
    private readonly locks: Model<any>,
    private readonly slotMs: number,
  ) {}

  private slotOf(now: Date): number {
    return Math.floor(now.getTime() / this.slotMs);
  }

  async tryClaim(resource: string, owner: string, now: Date): Promise<Lease | null> {
    const slot = this.slotOf(now);
    for (const s of [slot, slot + 1]) {
      try {
        await this.locks.collection.insertOne({ _id: `${resource}@${s}`, owner, expiresAt: new Date((s + 1) * this.slotMs) } as never);
      } catch (err) {
        if (isDuplicateKeyError(err)) return null;
        throw err;
      }
    }
    return { ids: [`${resource}@${slot}`, `${resource}@${slot + 1}`], owner };
  }

  /** Gives a claim back early (work done, or to be retried sooner than the lease would allow). */
  async release(lease: Lease): Promise<void> {
    // One delete per _id: FerretDB 1.24 would decode every lock for `_id: {$in}`. The slot in
    // the _id makes it ours: nobody else can hold these ids until both slots have passed.
    for (const id of lease.ids) await this.locks.deleteOne({ _id: id });
  }

  /** Removes locks whose slot has passed (whatever their slot length). */
  async sweep(now: Date): Promise<void> {
    await this.locks.deleteMany({ expiresAt: { $lt: now } });
  }
}

/**
 * Applies `update` to the document if `owner` still holds it (its lockedBy), and tells whether
 * it did. Read by _id, then written by _id: FerretDB 1.24 would decode the whole collection
 * for a filter of {_id, lockedBy}, and does not make such a conditional update atomic anyway;
 * exclusivity comes from the slot lock, this check only stops a worker whose lease lapsed.
 */
export async function updateIfStillMine(model: Model<any>, id: unknown, owner: string, update: Record<string, unknown>): Promise<boolean> {
  const doc = await model.findById(id, { lockedBy: 1 }).lean<{ lockedBy?: string | null }>();
  if (!doc || doc.lockedBy !== owner) return false;
  await model.updateOne({ _id: id }, update);
  return true;
}

export interface Lease {
  ids: string[];
  owner: string;
}

export interface ClaimOptions<T> {
  /** The items (inbox, outbox). */
  model: Model<any>;
  /** Their work queue (models/misc.ts queueEntrySchema). */
  queue: Model<any>;
  locks: SlotLocks;
  /** Lock namespace, e.g. "inbox". */
  name: string;
  owner: string;
  now: Date;
  /** How long a claim keeps the item away from other workers if its worker dies. */
  leaseMs: number;
  /** Applied to the item by the winner, e.g. record the owner and count the attempt. */
  update: (doc: T) => Record<string, unknown>;
  /** Whether the item, re-read under the lock, still needs work (its queue entry may be stale). */
  isClaimable: (doc: T) => boolean;
  /**
   * The worker's buffer of due entries (shared by its lanes): one scan of the queue fills it
   * with up to BATCH entries, and claims take from it until it is empty. Without it every
   * claim scans the queue, whose cost grows with the backlog.
   */
  buffer?: QueueEntry[];
}

const BATCH = 64;

/** An entry whose item is still missing after this long was left by a failed write: dropped. */
const ORPHAN_ENTRY_MS = 60_000;

/**
 * Claims one due item: reads the first few due queue entries (in random order, so parallel
 * workers do not all fight over the first), takes the first whose slot lock it wins, re-reads
 * the item by _id, moves its entry one lease ahead and marks the item. Returns null when
 * nothing could be claimed.
 */
export async function claimNext<T extends { _id: unknown }>(opts: ClaimOptions<T>): Promise<{ doc: T; lease: Lease } | null> {
  const candidates = opts.buffer ?? [];
  if (!candidates.length) {
    const due = await opts.queue.find({ due: { $lte: opts.now } }).sort({ due: 1 }).limit(opts.buffer ? BATCH : 8).lean<QueueEntry[]>();
    // Oldest first, but the first few in random order, so parallel workers do not all fight over one.
    const head = due.splice(0, 8);
    while (head.length) due.unshift(head.splice(randomInt(head.length), 1)[0]!);
    candidates.push(...due);
  }
  while (candidates.length) {
    const entry = candidates.shift();
    const lease = await opts.locks.tryClaim(`${opts.name}:${String(entry!._id)}`, opts.owner, opts.now);
    if (!lease) continue;
    if (opts.buffer) {
      // A buffered entry may have been settled or deferred since the scan.
      const current = await opts.queue.findById(entry!._id).lean<QueueEntry>();
      if (!current || current.due > opts.now) {
        await opts.locks.release(lease);
        continue;
      }
    }
    const doc = await opts.model.findById(entry!._id).lean<T>();
    if (!doc || !opts.isClaimable(doc)) {
      // Finished meanwhile (or never written: the entry is written before its item, so a young
      // entry without an item may be an item being written right now; look again shortly).
      if (doc || opts.now.getTime() - new Date(entry!.since).getTime() > ORPHAN_ENTRY_MS) await finishWork(opts.queue, entry!._id);
      else await deferWork(opts.queue, entry!._id, new Date(opts.now.getTime() + 2000));
      await opts.locks.release(lease);
      continue;
    }
    await deferWork(opts.queue, doc._id, new Date(opts.now.getTime() + opts.leaseMs));
    await opts.model.updateOne({ _id: doc._id }, opts.update(doc));
    return { doc: (await opts.model.findById(doc._id).lean<T>())!, lease };
  }
  return null;
}

export interface QueueEntry {
  _id: unknown;
  due: Date;
  since: Date;
}

/** Adds work for an item (kept as it is if the item is already queued). Write it before the item. */
export async function queueWork(queue: Model<any>, id: unknown, due: Date): Promise<void> {
  try {
    await queue.collection.insertOne({ _id: id, due, since: due } as never);
  } catch (err) {
    if (!isDuplicateKeyError(err)) throw err;
  }
}

/** Makes an item due at `due` (queued again if its entry was gone). */
export async function deferWork(queue: Model<any>, id: unknown, due: Date): Promise<void> {
  await queue.updateOne({ _id: id }, { $set: { due }, $setOnInsert: { since: due } }, { upsert: true });
}

/** The item needs no more work. */
export async function finishWork(queue: Model<any>, id: unknown): Promise<void> {
  await queue.deleteOne({ _id: id });
}
