import type { Model } from 'mongoose';
import { isDuplicateKeyError } from '../../errors/errors.ts';

/** Inserts `doc`; false when a document with its unique key exists already. */
export async function tryInsert(model: Model<any>, doc: Record<string, unknown>): Promise<boolean> {
  try {
    await model.collection.insertOne(doc as never);
    return true;
  } catch (err) {
    if (isDuplicateKeyError(err)) return false;
    throw err;
  }
}

/**
 * Stores `doc` once, keyed by its _id: the first call inserts it, any later (or concurrent) one
 * gets the stored document back. `created` tells which.
 */
export async function insertOnce<T>(model: Model<any>, doc: Record<string, unknown> & { _id: unknown }): Promise<{ doc: T; created: boolean }> {
  if (await tryInsert(model, doc)) return { doc: doc as T, created: true };
  const stored = await model.findById(doc._id).lean<T>();
  // A duplicate on another unique index of a document that is gone again: report it as it was.
  if (!stored) throw new Error(`insertOnce: ${model.collection.name} ${String(doc._id)} collided but cannot be read`);
  return { doc: stored, created: false };
}

/**
 * Stores each of `docs` once, in one command: documents whose key exists already are skipped.
 * Returns the _ids of the documents this call inserted.
 */
export async function insertManyOnce(model: Model<any>, docs: (Record<string, unknown> & { _id: unknown })[]): Promise<unknown[]> {
  if (!docs.length) return [];
  try {
    await model.collection.insertMany(docs as never[], { ordered: false });
    return docs.map((d) => d._id);
  } catch (err) {
    const skipped = duplicatesSkipped(err);
    if (!skipped) throw err;
    return docs.filter((_, i) => !skipped.has(i)).map((d) => d._id);
  }
}

/**
 * The positions of the documents an unordered insertMany skipped because their key exists,
 * when that is all that went wrong; null for any other failure. A dropped connection or a dead
 * server also surfaces as a bulk write error, with no write errors at all: that is a failure,
 * never "all duplicates".
 */
function duplicatesSkipped(err: unknown): Set<number> | null {
  const e = err as { writeErrors?: unknown; writeConcernErrors?: unknown[]; result?: { getWriteConcernError?: () => unknown } };
  if (e?.result?.getWriteConcernError?.() || (Array.isArray(e?.writeConcernErrors) && e.writeConcernErrors.length)) return null;
  const list = (Array.isArray(e?.writeErrors) ? e.writeErrors : e?.writeErrors ? [e.writeErrors] : []) as { code?: number; index?: number; err?: { index?: number } }[];
  if (!list.length || !list.every((w) => w.code === 11000)) return null;
  return new Set(list.map((w) => w.index ?? w.err?.index ?? -1));
}

/**
 * Sets fields of the document `_id`, creating it if missing. Two upserts at once may both try
 * to insert: the loser's insert collides on _id, and it becomes a plain update.
 */
export async function upsertById(model: Model<any>, _id: unknown, set: Record<string, unknown>): Promise<void> {
  try {
    await model.updateOne({ _id }, { $set: set }, { upsert: true });
  } catch (err) {
    if (!isDuplicateKeyError(err)) throw err;
    await model.updateOne({ _id }, { $set: set });
  }
}
