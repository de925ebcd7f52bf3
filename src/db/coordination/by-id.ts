import type { Model } from 'mongoose';

/**
 * Reads documents by _id, one equality look-up per id, a few at a time. On FerretDB an
 * equality on `_id` (or on an indexed field) is answered by the backend's index, but `$in`
 * is not pushed down: it reads the whole collection (measured on PostgreSQL at 2,000 documents
 * of 5 KB: 5 ms for one `_id`, 240 ms for `$in` of three). Use `$in` only on the small queue
 * collections; use this on collections that keep history (inbox, outbox, threads, tickets).
 * Returns the documents found, in the order of `ids`.
 */
export async function findByIds<T>(model: Model<any>, ids: readonly unknown[], projection?: Record<string, 0 | 1>): Promise<T[]> {
  const unique = [...new Map(ids.map((id) => [String(id), id])).values()];
  const found: T[] = [];
  for (let i = 0; i < unique.length; i += PARALLEL) {
    const docs = await Promise.all(unique.slice(i, i + PARALLEL).map((id) => model.findById(id, projection).lean<T>()));
    for (const doc of docs) if (doc) found.push(doc as T);
  }
  return found;
}

/** Look-ups in flight at once: enough to hide the round trips, few enough to leave the pool to others. */
const PARALLEL = 8;
