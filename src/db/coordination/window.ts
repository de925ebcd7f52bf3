import type { Model } from 'mongoose';
import { isDuplicateKeyError } from '../../errors/errors.ts';

/** Per process and collection: the count last seen for each key and window, where the next event starts trying. */
const seenBy = new WeakMap<Model<any>, Map<string, number>>();

/**
 * Counts one event for `key` in the fixed window of `windowMs` holding `now`, if fewer than
 * `limit` were counted there: true when counted. Each counted event is a document
 * "<key>|<window start>|<n>", n = 1…limit, taken by insert; a counter's `$inc` could let more
 * than `limit` through. Windows past their end are removed by sweepWindows.
 */
export async function countInWindow(model: Model<any>, key: string, limit: number, windowMs: number, now: Date): Promise<boolean> {
  const t = now.getTime();
  const start = t - (t % windowMs);
  const windowEnd = new Date(start + windowMs);
  const memo = `${key}|${start}`;
  let seen = seenBy.get(model);
  if (!seen || seen.size > 10_000) seenBy.set(model, (seen = new Map()));
  for (let n = (seen.get(memo) ?? 0) + 1; n <= limit; n++) {
    try {
      await model.collection.insertOne({ _id: `${memo}|${n}`, n, windowEnd } as never);
      seen.set(memo, n);
      return true;
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
    }
  }
  seen.set(memo, limit);
  return false;
}

/** Removes the windows that have ended (there are no TTL indexes to do it). */
export async function sweepWindows(model: Model<any>, now: Date): Promise<void> {
  await model.deleteMany({ windowEnd: { $lt: now } });
}
