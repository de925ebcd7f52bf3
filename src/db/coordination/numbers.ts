import type { Model } from 'mongoose';
import { isDuplicateKeyError } from '../../errors/errors.ts';

/**
 * Per process and model: the next number to hand out, and numbers handed out but not used (a
 * caller whose document existed already), handed out again first. Concurrent callers in one
 * process so never try the same number.
 */
const sequences = new WeakMap<Model<any>, { next: number; free: number[] }>();

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
  let seq = sequences.get(model);
  if (!seq) {
    const next = (await highest(model, field, spec.first)) + 1;
    seq = sequences.get(model) ?? { next, free: [] };
    sequences.set(model, seq);
  }
  const state = seq;
  const take = () => (state.free.length ? state.free.shift()! : state.next++);
  let n = take();
  for (let attempt = 1; attempt <= 200; attempt++) {
    const doc = spec.build(n);
    let inserted = false;
    try {
      await model.collection.insertOne(doc as never);
      inserted = true;
    } catch (err) {
      if (!isDuplicateKeyError(err)) {
        giveBack(state, n);
        throw err;
      }
    }
    if (inserted) return { doc: doc as T, created: true };
    const stored = await model.findById(doc._id).lean<T>();
    if (stored) {
      giveBack(state, n);
      return { doc: stored, created: false };
    }
    // The number was taken by another process: take the next one, and after a run of
    // collisions (another process is ahead) ask where the sequence is.
    if (attempt % 10 === 0) state.next = Math.max(state.next, (await highest(model, field, spec.first)) + 1);
    n = take();
  }
  throw new Error(`insertNumbered: no free number in ${model.collection.name} after 200 attempts`);
}

function giveBack(state: { free: number[] }, n: number): void {
  state.free.push(n);
  state.free.sort((a, b) => a - b);
}
