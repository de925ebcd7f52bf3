import { randomUUID } from 'node:crypto';
import { claimNext, type QueueEntry, deferWork, finishWork, queueWork, SlotLocks, updateIfStillMine } from '../../db/claims.ts';
import type { InboxItem } from '../../db/models/inbox.ts';
import { errorMessage, NotFoundError } from '../../errors/errors.ts';
import { PollLoop } from '../../jobs/poll-loop.ts';
import type { DomainContext } from '../context.ts';
import { ingestMessage } from './process.ts';

/**
 * Drains the durable inbox. Each item is claimed with a lease (db/claims.ts), so several
 * helpgate processes share the work and an item whose worker died is taken again when its
 * lease runs out. An item that keeps failing is quarantined with its error, never
 * deleted; `helpgate inbox retry <id>` puts it back.
 */
export class IngestWorker {
  private readonly id = `ingest-${randomUUID()}`;
  private readonly loop: PollLoop;
  private readonly locks: SlotLocks;
  private readonly buffer: QueueEntry[] = [];
  private lastSweep = 0;

  constructor(private readonly ctx: DomainContext) {
    this.locks = new SlotLocks(ctx.store.models.Lock, ctx.config.ingest.leaseSeconds * 1000);
    this.loop = new PollLoop({
      name: 'ingest',
      step: () => this.step(),
      concurrency: ctx.config.ingest.concurrency,
      idleMs: 1000,
      onError: (err) => ctx.log.error({ err: errorMessage(err) }, 'ingest worker error'),
    });
  }

  start(): void {
    this.loop.start();
  }

  kick(): void {
    this.loop.kick();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Claims and processes one item; false when nothing is due. */
  async step(): Promise<boolean> {
    const now = this.ctx.now();
    const leaseMs = this.ctx.config.ingest.leaseSeconds * 1000;
    const claim = await claimNext<InboxItem>({
      model: this.ctx.store.models.Inbox,
      queue: this.ctx.store.models.InboxQueue,
      locks: this.locks,
      name: 'inbox',
      owner: this.id,
      now,
      leaseMs,
      update: (doc) => ({ $set: { availableAt: new Date(now.getTime() + leaseMs), lockedBy: this.id, attempts: doc.attempts + 1 } }),
      buffer: this.buffer,
      isClaimable: (doc) => doc.state === 'pending',
    });
    if (!claim && now.getTime() - this.lastSweep > 5 * 60_000) {
      this.lastSweep = now.getTime();
      await this.locks.sweep(now);
    }
    if (!claim) return false;
    try {
      await this.process(claim.doc);
    } finally {
      await this.locks.release(claim.lease);
    }
    return true;
  }

  private async process(item: InboxItem): Promise<void> {
    const { Inbox, InboxQueue } = this.ctx.store.models;
    // The item first, then its queue entry: a crash in between leaves an entry whose item is
    // settled, which the next claim drops.
    const settle = async (update: Record<string, unknown>, retryAt: Date | null = null) => {
      if (!(await updateIfStillMine(Inbox, item._id, this.id, update))) return;
      if (retryAt) await deferWork(InboxQueue, item._id, retryAt);
      else await finishWork(InboxQueue, item._id);
    };
    const log = this.ctx.log.child({ inboxId: String(item._id) });
    try {
      const outcome = await ingestMessage(this.ctx, item);
      if (outcome.kind === 'ignored') {
        await settle({ $set: { state: 'ignored', note: outcome.note, lockedBy: null, lastError: null } });
        log.info({ note: outcome.note }, 'message ignored');
      } else if (outcome.kind === 'held') {
        await settle({ $set: { state: 'held', heldAddress: outcome.address, note: outcome.note, lockedBy: null, lastError: null } });
        log.info({ address: outcome.address }, 'message held until its sender signs in');
      } else {
        await settle({
          $set: { state: 'done', ticketNumber: outcome.ticketNumber, articleId: outcome.articleId, note: outcome.note, lockedBy: null, lastError: null },
        });
        log.info({ ticket: outcome.ticketNumber, created: outcome.created }, outcome.created ? 'ticket opened' : 'follow-up added');
      }
    } catch (err) {
      const message = errorMessage(err);
      if (item.attempts >= this.ctx.config.ingest.maxAttempts) {
        await settle({ $set: { state: 'quarantined', lastError: message, lockedBy: null } });
        log.error({ err: message, attempts: item.attempts }, 'message quarantined');
      } else {
        const delayMs = Math.min(60_000, 1000 * 2 ** item.attempts);
        const retryAt = new Date(Date.now() + delayMs);
        await settle({ $set: { lastError: message, availableAt: retryAt, lockedBy: null } }, retryAt);
        log.warn({ err: message, attempts: item.attempts, retryInMs: delayMs }, 'message processing failed, will retry');
      }
    }
  }
}

/** Puts a quarantined (or any) item back in the queue with fresh attempts. */
export async function retryInboxItem(ctx: DomainContext, id: string): Promise<InboxItem> {
  const { Inbox, InboxQueue } = ctx.store.models;
  if (!/^[0-9a-f]{24}$/i.test(id)) throw new NotFoundError('inbox item', id);
  const now = ctx.now();
  const item = await Inbox.findOneAndUpdate({ _id: id }, { $set: { state: 'pending', attempts: 0, availableAt: now, lockedBy: null } }, { returnDocument: 'after' }).lean<InboxItem>();
  if (!item) throw new NotFoundError('inbox item', id);
  await queueWork(InboxQueue, item._id, now);
  await deferWork(InboxQueue, item._id, now);
  return item;
}
