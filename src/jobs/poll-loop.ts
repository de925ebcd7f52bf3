import { Naps } from './nap.ts';

/**
 * Runs `step` over and over in `concurrency` parallel lanes. A step returns true when it did
 * work (run again at once) and false when there was nothing to do (sleep until `kick()` or
 * `idleMs`). Errors are reported and followed by a pause, never a tight loop. Every worker
 * that drains a MongoDB queue (inbox, outbox, …) runs on one of these.
 */
export interface PollLoopOptions {
  name: string;
  step: () => Promise<boolean>;
  concurrency?: number;
  idleMs?: number;
  errorPauseMs?: number;
  onError?: (err: unknown) => void;
}

/** How a loop is doing, for the readiness probe. */
export interface LoopHealth {
  running: boolean;
  /** How long the longest step now running has run (0 when idle). */
  busyForMs: number;
  lastError: string | null;
}

export class PollLoop {
  private running = false;
  private readonly busySince = new Map<object, number>();
  private lastError: string | null = null;
  private lanes: Promise<void>[] = [];
  private readonly naps = new Naps();
  private readonly opts: Required<Omit<PollLoopOptions, 'onError'>> & Pick<PollLoopOptions, 'onError'>;

  constructor(opts: PollLoopOptions) {
    this.opts = { concurrency: 1, idleMs: 1000, errorPauseMs: 1000, ...opts };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (let i = 0; i < this.opts.concurrency; i++) this.lanes.push(this.lane());
  }

  /** Wakes idle lanes now (e.g. a message was just stored). */
  kick(): void {
    this.naps.wake();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.kick();
    await Promise.all(this.lanes);
    this.lanes = [];
  }

  private sleep(ms: number): Promise<void> {
    return this.naps.sleep(ms);
  }

  health(): LoopHealth {
    const oldest = Math.min(...this.busySince.values());
    return { running: this.running, busyForMs: this.busySince.size ? Date.now() - oldest : 0, lastError: this.lastError };
  }

  private async lane(): Promise<void> {
    while (this.running) {
      let worked = false;
      const step = {};
      this.busySince.set(step, Date.now());
      try {
        worked = await this.opts.step();
        this.lastError = null;
      } catch (err) {
        this.lastError = err instanceof Error ? err.message : String(err);
        this.opts.onError?.(err);
        await this.sleep(this.opts.errorPauseMs);
        continue;
      } finally {
        this.busySince.delete(step);
      }
      if (!worked && this.running) await this.sleep(this.opts.idleMs);
    }
  }
}
