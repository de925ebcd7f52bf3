import { randomUUID } from 'node:crypto';
import { type Claimed, QueueWorker, type Settlement, WorkQueue } from '../../db/coordination/index.ts';
import type { InboxItem } from '../../db/models/inbox.ts';
import { errorMessage, NotFoundError } from '../../errors/errors.ts';
import type { LoopHealth } from '../../jobs/poll-loop.ts';
import { metrics } from '../../log/metrics.ts';
import type { DomainContext } from '../context.ts';
import { releaseNextHeldMail } from '../identity/held.ts';
import { ingestMessage } from './process.ts';
import { requeueInboxItems } from './queue.ts';

export { requeueInboxItems };

/** Items one lane claims and settles together. */
const BATCH = 2;

/**
 * Drains the durable inbox. Each item is claimed with a lease (db/coordination), so several
 * helpgate processes share the work and an item whose worker died is taken again when its
 * lease runs out. An item that keeps failing is quarantined with its error, never
 * deleted; `helpgate inbox retry <id>` puts it back.
 */
export class IngestWorker {
  private readonly id = `ingest-${randomUUID()}`;
  private readonly worker: QueueWorker<InboxItem>;
  /** Items handled by this worker since it started (whatever their outcome). */
  handled = 0;

  constructor(private readonly ctx: DomainContext) {
    const queue = new WorkQueue<InboxItem>({
      items: ctx.store.models.Inbox,
      queue: ctx.store.models.InboxQueue,
      leaseMs: ctx.config.ingest.leaseSeconds * 1000,
      owner: this.id,
      isClaimable: (doc) => doc.state === 'pending',
    });
    this.worker = new QueueWorker({
      name: 'ingest',
      queue,
      // A lane takes what is due, up to a few items, and handles them side by side: a single
      // mail goes alone, a backlog is claimed and settled a few at a time (fewer writes).
      batch: BATCH,
      // INGEST_CONCURRENCY items at most are handled at once.
      concurrency: Math.max(1, Math.ceil(ctx.config.ingest.concurrency / BATCH)),
      now: () => ctx.now(),
      handle: (claimed) => this.process(claimed),
      onError: (err) => ctx.log.error({ err: errorMessage(err) }, 'ingest worker error'),
    });
  }

  start(): void {
    this.worker.start();
  }

  kick(): void {
    this.worker.kick();
  }

  stop(): Promise<void> {
    return this.worker.stop();
  }

  health(): LoopHealth {
    return this.worker.health();
  }

  private async process(claimed: Claimed<InboxItem>): Promise<Settlement> {
    try {
      return await this.ingest(claimed);
    } finally {
      this.handled++;
    }
  }

  private async ingest({ doc: item, attempt }: Claimed<InboxItem>): Promise<Settlement> {
    const done = (set: Record<string, unknown>): Settlement => ({ id: item._id, update: { $set: { ...set, attempts: attempt } }, retryAt: null });
    const log = this.ctx.log.child({ inboxId: String(item._id) });
    try {
      const outcome = await ingestMessage(this.ctx, item);
      metrics.ingestOutcomes.inc({ outcome: outcome.kind });
      if (outcome.kind === 'ticket') metrics.ingestLatency.observe(Math.max(0, (Date.now() - new Date(item.receivedAt).getTime()) / 1000));
      // Released held mail becomes tickets one mail after the other, in arrival order.
      if (item.heldAddress && outcome.kind !== 'held') await releaseNextHeldMail(this.ctx, item.heldAddress, item._id);
      if (outcome.kind === 'ignored') {
        log.info({ note: outcome.note }, 'message ignored');
        return done({ state: 'ignored', note: outcome.note, lastError: null });
      }
      if (outcome.kind === 'held') {
        log.info({ address: outcome.address }, 'message held until its sender signs in');
        return done({ state: 'held', heldAddress: outcome.address, note: outcome.note, lastError: null });
      }
      log.info({ ticket: outcome.ticketNumber, created: outcome.created }, outcome.created ? 'ticket opened' : 'follow-up added');
      return done({ state: 'done', ticketNumber: outcome.ticketNumber, articleId: outcome.articleId, note: outcome.note, lastError: null });
    } catch (err) {
      const message = errorMessage(err);
      if (attempt >= this.ctx.config.ingest.maxAttempts) {
        log.error({ err: message, attempts: attempt }, 'message quarantined');
        metrics.ingestOutcomes.inc({ outcome: 'quarantined' });
        return done({ state: 'quarantined', lastError: message });
      }
      const delayMs = Math.min(60_000, 1000 * 2 ** attempt);
      const retryAt = new Date(Date.now() + delayMs);
      log.warn({ err: message, attempts: attempt, retryInMs: delayMs }, 'message processing failed, will retry');
      metrics.ingestOutcomes.inc({ outcome: 'retry' });
      return { id: item._id, update: { $set: { lastError: message, availableAt: retryAt, attempts: attempt } }, retryAt };
    }
  }
}

/** Puts a quarantined (or any) item back in the queue with fresh attempts. */
export async function retryInboxItem(ctx: DomainContext, id: string): Promise<InboxItem> {
  const { Inbox } = ctx.store.models;
  if (!/^[0-9a-f]{24}$/i.test(id)) throw new NotFoundError('inbox item', id);
  const now = ctx.now();
  const item = await Inbox.findOneAndUpdate({ _id: id }, { $set: { state: 'pending', attempts: 0, availableAt: now } }, { returnDocument: 'after' }).lean<InboxItem>();
  if (!item) throw new NotFoundError('inbox item', id);
  await requeueInboxItems(ctx, [item._id]);
  return item;
}

