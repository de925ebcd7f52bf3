/**
 * Readiness of one helpgate process: named checks (database, SMTP, workers, outbox), each a
 * function that resolves with a short detail when healthy and throws (or times out) when not.
 * They run every `intervalMs` and on demand; the last results answer `GET /readyz`, `helpgate
 * status` and the SMTP intake's "may I take mail now" without a database round trip each.
 */
export interface CheckResult {
  ok: boolean;
  detail: string;
  /** How long the check took. */
  ms: number;
  checkedAt: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

export type Check = () => Promise<string>;

export interface ReadinessOptions {
  checks: Record<string, Check>;
  intervalMs: number;
  /** A check that takes longer than this fails. */
  timeoutMs: number;
  /** Told when a check changes between ok and failing. */
  onChange?: (name: string, result: CheckResult) => void;
}

export class Readiness {
  private results: Record<string, CheckResult> = {};
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<ReadinessReport> | null = null;

  constructor(private readonly opts: ReadinessOptions) {}

  start(): void {
    if (this.timer) return;
    void this.evaluate();
    this.timer = setInterval(() => void this.evaluate(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Runs every check now (a run already under way is shared) and returns the report. */
  evaluate(): Promise<ReadinessReport> {
    this.running ??= this.runAll().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** The last results (checks never run yet count as failing). */
  report(): ReadinessReport {
    const checks: Record<string, CheckResult> = {};
    for (const name of Object.keys(this.opts.checks)) checks[name] = this.results[name] ?? { ok: false, detail: 'not checked yet', ms: 0, checkedAt: new Date(0).toISOString() };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }

  /** Why a check failed the last time it ran; null when it passed or has not run yet. */
  failing(name: string): string | null {
    const r = this.results[name];
    return r && !r.ok ? r.detail : null;
  }

  private async runAll(): Promise<ReadinessReport> {
    await Promise.all(Object.entries(this.opts.checks).map(([name, check]) => this.runOne(name, check)));
    return this.report();
  }

  private async runOne(name: string, check: Check): Promise<void> {
    const started = Date.now();
    let result: CheckResult;
    let timer: NodeJS.Timeout | undefined;
    try {
      const detail = await Promise.race([
        check(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
        }),
      ]);
      result = { ok: true, detail, ms: Date.now() - started, checkedAt: new Date().toISOString() };
    } catch (err) {
      result = { ok: false, detail: err instanceof Error ? err.message : String(err), ms: Date.now() - started, checkedAt: new Date().toISOString() };
    } finally {
      clearTimeout(timer);
    }
    const before = this.results[name];
    this.results[name] = result;
    if (!before || before.ok !== result.ok) this.opts.onChange?.(name, result);
  }
}
