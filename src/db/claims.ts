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
    await this.locks.deleteMany({ _id: { $in: lease.ids }, owner: lease.owner });
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
  model: Model<any>;
  locks: SlotLocks;
  /** Lock namespace, e.g. "inbox". */
  name: string;
  filter: Record<string, unknown>;
  sort: Record<string, 1 | -1>;
  owner: string;
  now: Date;
  /** Applied by the winner, e.g. push availableAt one lease ahead and count the attempt. */
  update: (doc: T) => Record<string, unknown>;
  /**
   * The same condition as `filter`, tested on the document re-read by _id under the lock.
   * Without it the re-read repeats `filter`, which FerretDB 1.24 answers by decoding the
   * whole collection (it pushes down nothing but a lone {_id: value}).
   */
  isClaimable?: (doc: T) => boolean;
}

/**
 * Claims one due document of a queue: looks at the first few candidates (in random order, so
 * parallel workers do not all fight over the first), takes the first whose lock it wins, and
 * marks it. Returns null when nothing could be claimed.
 */
export async function claimNext<T extends { _id: unknown }>(opts: ClaimOptions<T>): Promise<{ doc: T; lease: Lease } | null> {
  const candidates = await opts.model.find(opts.filter).sort(opts.sort).limit(8).lean<T[]>();
  while (candidates.length) {
    const [doc] = candidates.splice(randomInt(candidates.length), 1);
    const lease = await opts.locks.tryClaim(`${opts.name}:${String(doc!._id)}`, opts.owner, opts.now);
    if (!lease) continue;
    // Re-read under the lock: the previous holder may have finished it meanwhile.
    const fresh = opts.isClaimable
      ? await opts.model
          .findById(doc!._id)
          .lean<T>()
          .then((d) => (d && opts.isClaimable!(d) ? d : null))
      : await opts.model.findOne({ ...opts.filter, _id: doc!._id }).lean<T>();
    if (!fresh) {
      await opts.locks.release(lease);
      continue;
    }
    await opts.model.updateOne({ _id: fresh._id }, opts.update(fresh));
    return { doc: (await opts.model.findById(fresh._id).lean<T>())!, lease };
  }
  return null;
}
