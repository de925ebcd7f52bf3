import type { LockedChild } from './lock.ts';
import type { Tethered } from './tether.ts';

/** One engine process: how to start it and wait until it serves. */
export interface ChildSpec {
  name: string;
  stopSignal: 'SIGINT' | 'SIGTERM';
  /** Spawns the process and resolves once it serves (stopping it and throwing if it does not). */
  start(): Promise<Tethered>;
}

export interface SupervisorOptions {
  log: (line: string) => void;
  /** Give up when a dead child is not back within this long. */
  restartWithinMs: number;
  onGiveUp: (err: Error) => void;
  /** The running processes changed (to keep the lock file's list true). */
  onChange: (children: LockedChild[]) => void;
}

interface Entry {
  spec: ChildSpec;
  current: Tethered | null;
}

/**
 * Keeps the engine's processes running: a child that dies while helpgate runs is started
 * again on the same address, with backoff; the others keep running (FerretDB reconnects to a
 * restarted PostgreSQL by itself). Past `restartWithinMs`, onGiveUp is called once.
 */
export class Supervisor {
  private readonly entries: Entry[] = [];
  private stopping = false;
  private gaveUp = false;
  /** Restarts in progress: stop() waits for them, so that nothing they start outlives it. */
  private readonly recovering = new Set<Promise<void>>();
  /** Ends a restart's backoff wait early, when stopping. */
  private wake: (() => void) | null = null;

  constructor(private readonly opts: SupervisorOptions) {}

  /** Starts a child (in order: later ones may depend on earlier ones). */
  async add(spec: ChildSpec): Promise<void> {
    const entry: Entry = { spec, current: await spec.start() };
    this.entries.push(entry);
    this.changed();
    this.watch(entry);
  }

  children(): LockedChild[] {
    return this.entries.flatMap((e) => (e.current ? [{ name: e.spec.name, pid: e.current.pid, wrapperPid: e.current.wrapperPid, stopSignal: e.spec.stopSignal }] : []));
  }

  /** Stops every child, last started first. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    for (const entry of [...this.entries].reverse()) await entry.current?.stop();
    await Promise.all(this.recovering);
  }

  private changed(): void {
    this.opts.onChange(this.children());
  }

  private watch(entry: Entry): void {
    const child = entry.current!;
    void child.exited.then((code) => {
      if (this.stopping || entry.current !== child) return;
      entry.current = null;
      this.changed();
      this.opts.log(`${entry.spec.name} (pid ${child.pid}) exited with code ${code}; restarting it: ${child.output().trim().split('\n').slice(-2).join(' | ')}`);
      const recovery = this.recover(entry).finally(() => this.recovering.delete(recovery));
      this.recovering.add(recovery);
    });
  }

  private async recover(entry: Entry): Promise<void> {
    const since = Date.now();
    let delay = 100;
    let lastError: Error | null = null;
    while (!this.stopping) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
      if (this.stopping) return;
      try {
        entry.current = await entry.spec.start();
      } catch (err) {
        lastError = err as Error;
        if (Date.now() - since >= this.opts.restartWithinMs) break;
        delay = Math.min(delay * 2, 5000, Math.max(100, since + this.opts.restartWithinMs - Date.now()));
        continue;
      }
      if (this.stopping) {
        await entry.current.stop();
        return;
      }
      this.changed();
      this.opts.log(`${entry.spec.name} restarted (pid ${entry.current.pid}) after ${Date.now() - since} ms`);
      this.watch(entry);
      return;
    }
    if (this.stopping || this.gaveUp) return;
    this.gaveUp = true;
    this.opts.onGiveUp(new Error(`${entry.spec.name} could not be restarted within ${Math.round(this.opts.restartWithinMs / 1000)} s: ${lastError?.message ?? 'unknown error'}`));
  }
}
