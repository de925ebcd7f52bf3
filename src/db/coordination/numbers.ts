import type { Model } from 'mongoose';
import { isDuplicateKeyError } from '../../errors/errors.ts';

/** Where each model's sequence is expected to continue (per process; a collision moves it on). */
const nextGuess = new WeakMap<Model<any>, number>();

async function highest(model: Model<any>, field: string, first: number): Promise<number> {
  const last = await model.findOne({}, { [field]: 1 }).sort({ [field]: -1 }).lean<Record<string, number>>();
  return Math.max(first - 1, last?.[field] ?? 0);
}

export interface NumberedInsert {
  model: Model<any>;
  /** The field with a unique index that holds the number. */
  field: string;
  /** The first number of the sequence. */
  first: number;
  /** The document to store under number n (its _id is its idempotency key). */
  build: (n: number) => Record<string, unknown> & { _id: unknown };
}

/**
 * Stores a document under the next free number of a sequence. The number is taken by the
 * insert of the document itself (a unique index on `field`), so a number is used by exactly
 * one document and none is lost to a crash: there is no reservation that could outlive its
 * document. Each process remembers where it stopped, so a number usually costs one insert.
 * When the document's _id exists already (a re-run, or the same work running twice at once),
 * the stored one is returned with `created: false`.
 */
export async function insertNumbered<T>(spec: NumberedInsert): Promise<{ doc: T; created: boolean }> {
  const { model, field } = spec;
  let n = nextGuess.get(model) ?? (await highest(model, field, spec.first)) + 1;
  for (let attempt = 1; attempt <= 200; attempt++) {
    const doc = spec.build(n);
    try {
      await model.collection.insertOne(doc as never);
      nextGuess.set(model, n + 1);
      return { doc: doc as T, created: true };
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      const stored = await model.findById(doc._id).lean<T>();
      if (stored) return { doc: stored, created: false };
      // The number was taken by another document: try the next one, and after a run of
      // collisions (another process is ahead) ask where the sequence is.
      n = attempt % 10 === 0 ? (await highest(model, field, spec.first)) + 1 : n + 1;
    }
  }
  throw new Error(`insertNumbered: no free number in ${model.collection.name} after 200 attempts`);
}
