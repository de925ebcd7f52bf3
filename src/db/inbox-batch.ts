import type { Types } from 'mongoose';
import type { InboxItem } from './models/inbox.ts';
import type { Store } from './store.ts';

/** Most messages stored in one batch; see insertInboxItems for why 100. */
export const MAX_INBOX_BATCH = 100;

/** A received message's inbox item, as the intake writes it. */
export interface NewInboxItem {
  _id: Types.ObjectId;
  source: 'smtp' | 'pipe' | 'imap';
  envelope: InboxItem['envelope'];
  rawSha256: string;
  size: number;
  receivedAt: Date;
}

function isOnlyDuplicates(err: unknown): boolean {
  const e = err as { code?: number; writeErrors?: Array<{ code?: number }> };
  if (e?.code === 11000) return true;
  return Array.isArray(e?.writeErrors) && e.writeErrors.length > 0 && e.writeErrors.every((w) => w.code === 11000);
}

/**
 * Queues ingest work for new inbox items, in one write. The queue's document shape is the one
 * db/claims.ts queueWork writes: keep both in step (this is the one place the intake does it).
 * An entry already there is left as it is.
 */
export async function queueInboxItems(store: Store, ids: readonly Types.ObjectId[], due: Date): Promise<void> {
  if (!ids.length) return;
  try {
    await store.models.InboxQueue.collection.insertMany(ids.map((_id) => ({ _id, due, since: due })) as never[], { ordered: false });
  } catch (err) {
    if (!isOnlyDuplicates(err)) throw err;
  }
}

/**
 * Inserts the items in one insertMany: the intake's commit point. FerretDB 1.24 commits an
 * insert in transactions of 100 documents (its --test-batch-size; measured on SQLite and on
 * PostgreSQL: killed mid-insert, it kept a multiple of 100), so with at most MAX_INBOX_BATCH items a crash keeps all or none of them. An engine
 * that keeps a part anyway (or an answer lost on the way) is covered by withdrawInboxItems.
 */
export async function insertInboxItems(store: Store, items: readonly NewInboxItem[]): Promise<void> {
  if (items.length > MAX_INBOX_BATCH) throw new RangeError(`at most ${MAX_INBOX_BATCH} inbox items per batch, got ${items.length}`);
  await store.models.Inbox.insertMany(
    items.map((i) => ({ ...i, availableAt: i.receivedAt })),
    { ordered: true },
  );
}

/**
 * Takes back items whose batch failed (the sender was told 451 and will send again): the items
 * first, so that no claim can find them any more, then their queue entries. Only items still
 * untouched by ingest are removed (one taken already is past saving: see the intake's notes).
 */
export async function withdrawInboxItems(store: Store, ids: readonly Types.ObjectId[]): Promise<void> {
  if (!ids.length) return;
  const { Inbox, InboxQueue } = store.models;
  await Inbox.deleteMany({ _id: { $in: ids }, state: 'pending', lockedBy: null, attempts: 0 });
  // An item that ingest took already keeps its entry: its worker settles it.
  const kept = new Set((await Inbox.find({ _id: { $in: ids } }, { _id: 1 }).lean<{ _id: Types.ObjectId }[]>()).map((d) => String(d._id)));
  const orphans = ids.filter((id) => !kept.has(String(id)));
  if (orphans.length) await InboxQueue.deleteMany({ _id: { $in: orphans } });
}
