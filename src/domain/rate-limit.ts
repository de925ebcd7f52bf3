import { isDuplicateKeyError } from '../errors/errors.ts';
import type { DomainContext } from './context.ts';

let lastSweep = 0;

/**
 * A fixed-window limit in MongoDB, shared by every process: true while fewer than `limit`
 * events happened for `key` in the current window. limit 0 means no limit. Old windows are
 * removed by a sweep (FerretDB has no TTL indexes).
 *
 * Each permitted event takes one slot document "<key>|<window start>|<n>", n = 1…limit, by
 * inserting it: an insert into the unique _id index is atomic on FerretDB as on MongoDB,
 * whereas a `$inc` counter is not on FerretDB (concurrent increments are lost and
 * concurrent upserts fail with a duplicate key), which let more than `limit` through.
 */
export async function withinRateLimit(ctx: DomainContext, key: string, limit: number, windowMs: number): Promise<boolean> {
  if (limit <= 0) return true;
  const { RateWindow } = ctx.store.models;
  const now = ctx.now().getTime();
  const start = now - (now % windowMs);
  if (now - lastSweep > 10 * 60_000) {
    lastSweep = now;
    await RateWindow.deleteMany({ windowEnd: { $lt: new Date(now) } });
  }
  const windowEnd = new Date(start + windowMs);
  for (let n = 1; n <= limit; n++) {
    try {
      await RateWindow.collection.insertOne({ _id: `${key}|${start}|${n}`, n, windowEnd } as never);
      return true;
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
    }
  }
  return false;
}
