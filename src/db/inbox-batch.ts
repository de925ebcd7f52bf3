import type { Types } from 'mongoose';
import type { InboxItem } from './models/inbox.ts';
import { dropWork, enqueueWork, unclaimedOf } from './coordination/index.ts';
import { toBuffer } from './blobs.ts';
import type { Store } from './store.ts';

/** Most messages stored in one batch; see insertInboxItems for why 100. */
export const MAX_INBOX_BATCH = 100;

/** A received message's inbox item, as the intake writes it. */
export interface NewInboxItem {
  _id: Types.ObjectId;
  source: 'smtp' | 'pipe' | 'imap';
  envelope: InboxItem['envelope'];
  rawSha256: string;
  /** The message itself when it is small (keptInItem), else null: its bytes are in the blob store. */
  raw: Buffer | null;
  size: number;
  receivedAt: Date;
}

/** Messages up to this size are kept inside their inbox item instead of the blob store. */
export const INLINE_RAW_MAX = 64 * 1024;

export function keptInItem(raw: Buffer): boolean {
  return raw.length <= INLINE_RAW_MAX;
}

/** The raw message of an inbox item: in the item, or in the blob store (null when missing). */
export async function inboxRaw(store: Store, item: Pick<InboxItem, 'raw' | 'rawSha256'>): Promise<Buffer | null> {
  return item.raw ? toBuffer(item.raw) : store.blobs.get(item.rawSha256);
}

/** Queues ingest work for new inbox items, in one write (an entry already there is kept). */
export async function queueInboxItems(store: Store, ids: readonly Types.ObjectId[], due: Date): Promise<void> {
  await enqueueWork(store.models.InboxQueue, [...ids], due);
}

/**
 * Inserts the items in one insertMany: the intake's commit point. At most MAX_INBOX_BATCH
 * items, which every engine we start keeps whole or not at all (db/coordination/index.ts,
 * "insert batches"). An engine that keeps a part anyway (or an answer lost on the way) is
 * covered by withdrawInboxItems.
 */
export async function insertInboxItems(store: Store, items: readonly NewInboxItem[]): Promise<void> {
  if (items.length > MAX_INBOX_BATCH) throw new RangeError(`at most ${MAX_INBOX_BATCH} inbox items per batch, got ${items.length}`);
  await store.models.Inbox.insertMany(
    items.map((i) => ({ ...i, availableAt: i.receivedAt })),
    { ordered: true },
  );
}

/**
 * Takes back items whose batch failed (the sender was told 451 and will send again): those no
 * ingest worker has claimed yet lose their item first, so that no claim can find it any more,
 * then their queue entry. One that a worker took already is past saving (see the intake's notes).
 */
export async function withdrawInboxItems(store: Store, ids: readonly Types.ObjectId[]): Promise<void> {
  if (!ids.length) return;
  const { Inbox, InboxQueue } = store.models;
  const free = await unclaimedOf(InboxQueue, [...ids]);
  if (!free.length) return;
  await Inbox.deleteMany({ _id: { $in: free }, state: 'pending' });
  await dropWork(InboxQueue, free);
}
