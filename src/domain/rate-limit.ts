import { countInWindow, sweepWindows } from '../db/coordination/index.ts';
import type { DomainContext } from './context.ts';

let lastSweep = 0;

/**
 * A fixed-window limit shared by every process: true (and the event counted) while fewer than
 * `limit` events happened for `key` in the current window. limit 0 means no limit. Ended
 * windows are swept now and then.
 */
export async function withinRateLimit(ctx: DomainContext, key: string, limit: number, windowMs: number): Promise<boolean> {
  if (limit <= 0) return true;
  const { RateWindow } = ctx.store.models;
  const now = ctx.now();
  if (now.getTime() - lastSweep > 10 * 60_000) {
    lastSweep = now.getTime();
    await sweepWindows(RateWindow, now);
  }
  return countInWindow(RateWindow, key, limit, windowMs, now);
}
