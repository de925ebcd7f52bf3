import type { Model } from 'mongoose';
import { isDuplicateKeyError } from '../../errors/errors.ts';
import type { ImapLease } from '../models/intake.ts';

/**
 * "Only one process does this at a time", for a long-running job such as reading a mailbox,
 * on MongoDB and FerretDB alike (see models/intake.ts, imapLeaseSchema).
 *
 * Epoch e is held by whoever inserted "<resource>#<e>"; the holder renews its expiresAt. When
 * it has passed, others race to insert "<resource>#<e+1>" and one wins. The holder trusts its
 * lease only up to the expiry it last wrote, minus a margin, and only while no later epoch
 * exists; a renewal that lands late counts as lost. So a holder that stalls (or loses the
 * database) stops before anybody else may start.
 */
export class EpochLease {
  private epoch = 0;
  private validUntil = 0;

  constructor(
    private readonly leases: Model<any>,
    /** A document with `epoch`, the latest epoch known to be taken (a hint, _id = resource). */
    private readonly hints: Model<any>,
    private readonly resource: string,
    private readonly owner: string,
    private readonly leaseMs: number,
  ) {}

  private id(epoch: number): string {
    return `${this.resource}#${epoch}`;
  }

  /** True while the lease may be relied on (a margin before its expiry). */
  get valid(): boolean {
    return this.epoch > 0 && Date.now() < this.validUntil - Math.min(1000, this.leaseMs / 5);
  }

  get currentEpoch(): number {
    return this.epoch;
  }

  /** Takes the lease if nobody holds it; true when it is ours. */
  async tryAcquire(): Promise<boolean> {
    const start = Date.now();
    const hint = await this.hints.findById(this.resource, { epoch: 1 }).lean<{ epoch?: number }>();
    let e = hint?.epoch ?? 0;
    let current = e > 0 ? await this.leases.findById(this.id(e)).lean<ImapLease>() : null;
    for (;;) {
      const next = await this.leases.findById(this.id(e + 1)).lean<ImapLease>();
      if (!next) break;
      e++;
      current = next;
    }
    if (current && new Date(current.expiresAt).getTime() > start) {
      if (current.owner !== this.owner) return false;
      // Ours from before (e.g. the reader restarted its loop): keep it.
      this.epoch = e;
      return (await this.renew()) === null;
    }
    const expiresAt = new Date(start + this.leaseMs);
    try {
      await this.leases.collection.insertOne({ _id: this.id(e + 1), mailbox: this.resource, epoch: e + 1, owner: this.owner, acquiredAt: new Date(start), expiresAt } as never);
    } catch (err) {
      if (isDuplicateKeyError(err)) return false;
      throw err;
    }
    this.epoch = e + 1;
    this.validUntil = expiresAt.getTime();
    await this.hints.updateOne({ _id: this.resource }, { $max: { epoch: e + 1 } }, { upsert: true }).catch((err: unknown) => {
      if (!isDuplicateKeyError(err)) throw err;
    });
    return true;
  }

  /**
   * Moves the expiry ahead. Returns why the lease is gone (and drops it) when a later epoch
   * exists or the renewal landed after the old expiry, else null. A renewal that lands before the
   * old expiry cannot race a takeover: a taker reads the expiry after its own clock passed it.
   */
  async renew(): Promise<string | null> {
    if (!this.epoch) return 'no lease held';
    const start = Date.now();
    const deadline = this.validUntil;
    if (await this.leases.findById(this.id(this.epoch + 1), { _id: 1 }).lean()) return this.drop('another process took the mailbox over');
    await this.leases.updateOne({ _id: this.id(this.epoch) }, { $set: { expiresAt: new Date(start + this.leaseMs) } });
    if (deadline && Date.now() >= deadline) return this.drop(`the renewal took ${Date.now() - start} ms and landed after the lease had run out`);
    this.validUntil = start + this.leaseMs;
    return null;
  }

  /** Gives the lease up at once, so another process need not wait for it to expire. */
  async release(): Promise<void> {
    if (!this.epoch) return;
    const epoch = this.epoch;
    this.drop('released');
    await this.leases.updateOne({ _id: this.id(epoch) }, { $set: { expiresAt: new Date(0) } });
  }

  private drop(reason: string): string {
    this.epoch = 0;
    this.validUntil = 0;
    return reason;
  }
}
