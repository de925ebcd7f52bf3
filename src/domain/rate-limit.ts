import type { DomainContext } from './context.ts';

let lastSweep = 0;

/**
 * A fixed-window counter in MongoDB, shared by every process: true while fewer than `limit`
 * events happened for `key` in the current window. limit 0 means no limit. Old windows are
 * removed by a sweep (FerretDB has no TTL indexes).
 */
export async function withinRateLimit(ctx: DomainContext, key: string, limit: number, windowMs: number): Promise<boolean> {
  if (limit <= 0) return true;
  const { RateWindow } = ctx.store.models;
  const now = ctx.now().getTime();
  const start = now - (now % windowMs);
  const doc = await RateWindow.findOneAndUpdate(
    { _id: `${key}|${start}` },
    { $inc: { n: 1 }, $setOnInsert: { windowEnd: new Date(start + windowMs) } },
    { upsert: true, returnDocument: 'after' },
  ).lean<{ n: number }>();
  if (now - lastSweep > 10 * 60_000) {
    lastSweep = now;
    await RateWindow.deleteMany({ windowEnd: { $lt: new Date(now) } });
  }
  return doc!.n <= limit;
}
