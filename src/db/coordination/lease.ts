import type { Model } from 'mongoose';
import { tryInsert } from './insert-once.ts';

/** A resource held by `owner` (see Lease). */
export interface Held {
  ids: string[];
  owner: string;
}

/**
 * "One process does this for a while": a timer being run, the held mail of one address being
 * released. Time is cut into slots of the lease's length; a holder inserts the lock documents
 * "<resource>@<slot>" and "<resource>@<slot+1>". Exactly one process can insert the first, so
 * exactly one holds the resource; holding both makes the hold last at least one whole slot,
 * and it lapses by itself after two, so a dead holder needs no cleanup to be replaced.
 */
export class Lease {
  private readonly locks: Model<any>;

  /** `store`: the store whose lock collection holds the leases. */
  constructor(
    store: { models: { Lock: Model<any> } },
    private readonly ms: number,
  ) {
    this.locks = store.models.Lock;
  }

  private slotOf(now: Date): number {
    return Math.floor(now.getTime() / this.ms);
  }

  /** Holds `resource` for `owner`, or null when another holds it. */
  async tryHold(resource: string, owner: string, now: Date): Promise<Held | null> {
    const slot = this.slotOf(now);
    for (const s of [slot, slot + 1]) {
      if (!(await tryInsert(this.locks, { _id: `${resource}@${s}`, owner, expiresAt: new Date((s + 1) * this.ms) }))) return null;
    }
    return { ids: [`${resource}@${slot}`, `${resource}@${slot + 1}`], owner };
  }

  /** Waits up to `waitMs` for the resource (polling every 200 ms); null if it stayed taken. */
  async hold(resource: string, owner: string, now: () => Date, waitMs: number): Promise<Held | null> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const held = await this.tryHold(resource, owner, now());
      if (held || Date.now() >= deadline) return held;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Gives the resource back early. Nobody else can hold these ids until both slots have passed. */
  async release(held: Held): Promise<void> {
    await this.locks.collection.deleteMany({ _id: { $in: held.ids } } as never);
  }

  /** Removes locks whose slot has passed. */
  async sweep(now: Date): Promise<void> {
    await this.locks.deleteMany({ expiresAt: { $lt: now } });
  }
}
