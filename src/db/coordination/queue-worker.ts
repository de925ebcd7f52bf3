import { type LoopHealth, PollLoop } from '../../jobs/poll-loop.ts';
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
  /**
   * Settle items as they finish (grouped while a settlement is being written) instead of at the
   * end of the batch: for work that must not be done twice after a crash (sending mail), the
   * window between doing and recording stays one write long, whatever the batch size.
   */
  settleEach?: boolean;
}

/**
 * The claim → handle → settle loop shared by the inbox and outbox workers: each lane claims a
 * batch of due items, handles them side by side, and settles the batch in a few writes.
 */
export class QueueWorker<T extends { _id: unknown }> {
  private readonly loop: PollLoop;

  constructor(private readonly opts: QueueWorkerOptions<T>) {
    this.loop = new PollLoop({ name: opts.name, step: () => this.runOnce(), concurrency: opts.concurrency, idleMs: 1000, onError: opts.onError });
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

  health(): LoopHealth {
    return this.loop.health();
  }

  /** Claims, handles and settles one batch; false when nothing was due. */
  async runOnce(): Promise<boolean> {
    const { queue } = this.opts;
    const now = () => this.opts.now?.() ?? new Date();
    const claimed = await queue.claim(this.opts.batch, now());
    if (!claimed.length) return false;
    // A batch waits for its slowest item: while any is still running, the batch's claims are
    // extended every third of a lease, so that no other worker takes over work that is running.
    const running = new Set(claimed.map((c) => c.doc._id));
    const renewal = setInterval(() => {
      if (running.size) queue.renew([...running], now()).catch((err: unknown) => this.opts.onError(err));
    }, queue.leaseMs / 3);
    // With settleEach, what finishes is settled soon, grouped: the items that finish together (see
    // settleSoon) or while one settlement is being written go in one write. Else the batch is
    // settled at its end.
    const finished: Settlement[] = [];
    let settling: Promise<void> | null = null;
    let failure: unknown = null;
    const flush = () => {
      settling ??= (async () => {
        while (finished.length) await this.settle(finished.splice(0));
      })()
        .catch((err: unknown) => {
          failure ??= err;
        })
        .finally(() => {
          settling = null;
        });
      return settling;
    };
    // What finishes within SETTLE_TOGETHER_MS of the first unsettled item (or with the last of
    // the batch) is settled in one write: a lone mail's few outbound mails, sent side by side,
    // cost one settlement instead of one per finishing order.
    let together: NodeJS.Timeout | null = null;
    const settleSoon = () => {
      if (!running.size) {
        if (together) clearTimeout(together);
        together = null;
        void flush();
      } else {
        together ??= setTimeout(() => {
          together = null;
          void flush();
        }, SETTLE_TOGETHER_MS);
      }
    };
    let outcomes: PromiseSettledResult<Settlement>[];
    try {
      outcomes = await Promise.allSettled(
        claimed.map(async (c) => {
          let settlement: Settlement | null = null;
          try {
            settlement = await this.opts.handle(c);
            return settlement;
          } finally {
            running.delete(c.doc._id);
            if (this.opts.settleEach) {
              if (settlement) finished.push(settlement);
              if (finished.length) settleSoon();
            }
          }
        }),
      );
    } finally {
      clearInterval(renewal);
      if (together) clearTimeout(together);
    }
    outcomes.forEach((o) => {
      if (o.status === 'rejected') this.opts.onError(o.reason);
      else if (!this.opts.settleEach) finished.push(o.value);
    });
    queue.forget(claimed.filter((_, i) => outcomes[i]!.status === 'rejected').map((c) => c.doc._id));
    while (settling || finished.length) await flush();
    if (failure) throw failure;
    return true;
  }

  /**
   * Settles, trying again a few times over a few seconds: a batch whose settlement is lost is
   * done again once its claims lapse (for the outbox, its mails sent twice). Settling again is
   * harmless: it applies the same updates and finds the claims it deleted already gone.
   */
  private async settle(settled: Settlement[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.opts.queue.settle(settled);
        return;
      } catch (err) {
        if (attempt >= SETTLE_ATTEMPTS) {
          this.opts.queue.forget(settled.map((r) => r.id));
          throw err;
        }
        this.opts.onError(err);
        await new Promise<void>((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
      }
    }
  }
}

const SETTLE_ATTEMPTS = 3;
/** How long a finished item waits for the others of its batch before it is settled alone. */
const SETTLE_TOGETHER_MS = 50;
