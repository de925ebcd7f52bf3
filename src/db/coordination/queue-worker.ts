import { PollLoop } from '../../jobs/poll-loop.ts';
import type { Claimed, Settlement, WorkQueue } from './work-queue.ts';

export interface QueueWorkerOptions<T extends { _id: unknown }> {
  name: string;
  queue: WorkQueue<T>;
  /** Items claimed (and settled) together by one lane. */
  batch: number;
  /** Parallel lanes. */
  concurrency: number;
  /** Handles one claimed item and says how it ended. Throwing leaves the item to lapse and be retried. */
  handle: (claimed: Claimed<T>) => Promise<Settlement>;
  now?: () => Date;
  onError: (err: unknown) => void;
  /** What each lane runs (default: runOnce); lets the owner wrap a step, e.g. to count it. */
  step?: () => Promise<boolean>;
}

/**
 * The claim → handle → settle loop shared by the inbox and outbox workers: each lane claims a
 * batch of due items, handles them side by side, and settles the batch in a few writes.
 */
export class QueueWorker<T extends { _id: unknown }> {
  private readonly loop: PollLoop;

  constructor(private readonly opts: QueueWorkerOptions<T>) {
    this.loop = new PollLoop({ name: opts.name, step: opts.step ?? (() => this.runOnce()), concurrency: opts.concurrency, idleMs: 1000, onError: opts.onError });
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

  /** Claims, handles and settles one batch; false when nothing was due. */
  async runOnce(): Promise<boolean> {
    const { queue } = this.opts;
    const claimed = await queue.claim(this.opts.batch, this.opts.now?.() ?? new Date());
    if (!claimed.length) return false;
    const outcomes = await Promise.allSettled(claimed.map((c) => this.opts.handle(c)));
    const settled: Settlement[] = [];
    outcomes.forEach((o) => {
      if (o.status === 'fulfilled') settled.push(o.value);
      else this.opts.onError(o.reason);
    });
    queue.forget(claimed.filter((_, i) => outcomes[i]!.status === 'rejected').map((c) => c.doc._id));
    await queue.settle(settled);
    return true;
  }
}
