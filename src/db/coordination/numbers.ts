import type { Model } from 'mongoose';
import { isDuplicateKeyError } from '../../errors/errors.ts';

interface Sequence {
  /** The number the next insert tries. */
  next: number;
  /** The tail of this process's insert chain: one numbered insert at a time. */
  tail: Promise<unknown>;
}

/** Per process and model, where this process's sequence stands. */
const sequences = new WeakMap<Model<any>, Sequence>();

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
 * one document and there is no reservation that could outlive its document.
 *
 * The inserts of one process run one after another: a process never has n+1 in flight before
 * n is stored. Were two in flight, a crash could store n+1 and lose n, and since a restart goes
 * on from the highest number stored, n would stay a gap forever. One at a time, the number a
 * crash can lose is always the highest, which the next insert takes again. Other processes'
 * inserts run in parallel to ours; a collision with one moves us to the next number.
 *
 * When the document's _id exists already (a re-run, or the same work running twice at once),
 * the stored one is returned with `created: false` and the number stays free.
 */
export function insertNumbered<T>(spec: NumberedInsert): Promise<{ doc: T; created: boolean }> {
  let seq = sequences.get(spec.model);
  if (!seq) {
    seq = { next: 0, tail: Promise.resolve() };
    sequences.set(spec.model, seq);
  }
  const state = seq;
  const run = state.tail.then(() => insertInTurn<T>(spec, state));
  // The chain goes on after a failure: the failed caller sees its error, the next one its turn.
  state.tail = run.catch(() => undefined);
  return run;
}

const MAX_COLLISIONS = 200;

async function insertInTurn<T>(spec: NumberedInsert, state: Sequence): Promise<{ doc: T; created: boolean }> {
  const { model, field } = spec;
  if (state.next === 0) state.next = (await highest(model, field, spec.first)) + 1;
  for (let collisions = 0; collisions < MAX_COLLISIONS; ) {
    const doc = spec.build(state.next);
    try {
      await model.collection.insertOne(doc as never);
      state.next++;
      return { doc: doc as T, created: true };
    } catch (err) {
      // Any other error leaves `next` where it is: the next caller tries the same number,
      // which is right whether or not this insert was stored (if it was, that caller collides).
      if (!isDuplicateKeyError(err)) throw err;
    }
    const stored = await model.findById(doc._id).lean<T>();
    if (stored) return { doc: stored, created: false };
    // Another process stored this number. After a run of collisions (it is ahead of us),
    // ask where the sequence stands instead of walking up one by one.
    collisions++;
    state.next = collisions % 10 === 0 ? Math.max(state.next + 1, (await highest(model, field, spec.first)) + 1) : state.next + 1;
  }
  throw new Error(`insertNumbered: no free number in ${model.collection.name} after ${MAX_COLLISIONS} collisions`);
}
