import { insertOnce, Lease } from '../../db/coordination/index.ts';
import type { PrivacyRun } from '../../db/models/privacy.ts';
import type { DomainContext } from '../context.ts';
import { runDueErasures } from './requests.ts';
import { applyRetention } from './retention.ts';

/** How long one run keeps the job to itself; a holder that died lets go after at most twice this. */
const JOB_LEASE_MS = 15 * 60_000;

/**
 * The daily data-protection job: the retention rules, then the erasure requests whose grace
 * period has ended. Every helpgate process calls it (hourly, main.ts); one runs it at a time
 * (a lease), and once a day has its record ("privacy:<day>", the report of what was removed),
 * the others skip that day. A run that stops half-way leaves no record and is run again: each
 * of its steps removes only what is still there. Returns the run's record, or null when it
 * was not this call's turn. `force` runs it even when the day has its record (the command
 * line, tests); `waitMs` waits that long for another process's run to end.
 */
export async function runDailyPrivacyJob(ctx: DomainContext, owner: string, opts: { waitMs?: number; force?: boolean } = {}): Promise<PrivacyRun | null> {
  const { PrivacyRun: Runs } = ctx.store.models;
  const day = `privacy:${ctx.now().toISOString().slice(0, 10)}`;
  if (!opts.force && (await Runs.exists({ _id: day }))) return null;
  const leases = new Lease(ctx.store, JOB_LEASE_MS);
  const held = opts.waitMs ? await leases.hold('privacy-job', owner, () => ctx.now(), opts.waitMs) : await leases.tryHold('privacy-job', owner, ctx.now());
  if (!held) return null;
  try {
    // Another process may have finished the day while we waited for the lease.
    if (!opts.force && (await Runs.exists({ _id: day }))) return null;
    const startedAt = ctx.now();
    const removed = await applyRetention(ctx);
    const erasures = await runDueErasures(ctx);
    const run: PrivacyRun = { _id: day, startedAt, finishedAt: ctx.now(), removed: { ...removed }, erasures };
    await insertOnce<PrivacyRun>(Runs, { ...run });
    return run;
  } finally {
    await leases.release(held);
  }
}
