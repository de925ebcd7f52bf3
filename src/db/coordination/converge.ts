import type { Model } from 'mongoose';

/** How `converge` ended. */
export type Converged = 'done' | 'missing' | 'gave-up';

/**
 * Keeps a copy of facts held elsewhere (a user's list of the addresses bound to them, each
 * binding stored by an insert-once) equal to those facts, when several writers change them at
 * once. An update is not atomic against another on every engine (see index.ts), and a writer
 * that changed the copy from what it read could undo another's change unseen. So each writer
 * computes the whole value from the facts (`target`), writes it, and checks again, until the
 * copy equals the facts (a bounded number of rounds). The last write to the copy is thus always
 * followed by its writer's check against the facts as they are then, which repairs a stale write.
 */
export async function converge<V>(
  model: Model<any>,
  id: unknown,
  field: string,
  target: () => Promise<V>,
  same: (stored: V | undefined, wanted: V) => boolean,
  rounds = 5,
): Promise<Converged> {
  for (let round = 0; round < rounds; round++) {
    const wanted = await target();
    const doc = await model.findById(id, { [field]: 1 }).lean<Record<string, V>>();
    if (!doc) return 'missing';
    if (same(doc[field], wanted)) return 'done';
    await model.updateOne({ _id: id }, { $set: { [field]: wanted } });
  }
  return 'gave-up';
}
