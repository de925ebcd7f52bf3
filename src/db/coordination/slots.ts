import type { Model } from 'mongoose';
import { isDuplicateKeyError } from '../../errors/errors.ts';

/**
 * Appends to a list that several processes append to at once (where a `$push` would lose
 * entries): takes the first free position "<list>#<n>" after `after` by inserting `build(n)`
 * with that _id. Readers walk the positions by _id from 1 until the first missing one. Returns n.
 */
export async function appendSlot(model: Model<any>, list: string, after: number, build: (n: number) => Record<string, unknown>): Promise<number> {
  for (let n = after + 1; ; n++) {
    try {
      await model.collection.insertOne({ ...build(n), _id: `${list}#${n}` } as never);
      return n;
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
    }
  }
}

/**
 * The entries of an appended list from position `after + 1` on, in order, up to the first free
 * position (appendSlot never leaves a hole before a taken position).
 */
export async function readSlots<T extends { n: number }>(model: Model<any>, list: string, after: number): Promise<T[]> {
  const out: T[] = [];
  for (let n = after + 1; ; n++) {
    const doc = await model.findById(`${list}#${n}`).lean<T>();
    if (!doc) return out;
    out.push(doc);
  }
}
