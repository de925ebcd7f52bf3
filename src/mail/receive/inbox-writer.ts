import { Types } from 'mongoose';
import { enqueueWork } from '../../db/coordination/index.ts';
import type { Store } from '../../db/store.ts';
import { StoreUnavailableError } from '../../errors/errors.ts';

export interface Envelope {
  mailFrom: string | null;
  rcptTo: string[];
  clientIp?: string | null;
  helo?: string | null;
  /** IMAP: the configured mailbox the message was read from. */
  mailbox?: string | null;
}

export interface StoredItem {
  id: Types.ObjectId;
  rawSha256: string;
}

/**
 * Stores a received message durably: the raw bytes first, then the inbox item that makes
 * them visible to the ingest worker. Both writes are journaled before this resolves, so the
 * caller may answer "250" / exit 0. A failure is a StoreUnavailableError: answer "try later".
 */
export async function storeInboxItem(store: Store, source: 'smtp' | 'pipe' | 'imap', raw: Buffer, envelope: Envelope): Promise<StoredItem> {
  try {
    const rawSha256 = await store.blobs.put(raw);
    const now = new Date();
    // The queue entry first: an item can then never exist without one (a claim that finds the
    // entry but not yet the item looks again shortly).
    const _id = new Types.ObjectId();
    await enqueueWork(store.models.InboxQueue, [_id], now);
    const doc = await store.models.Inbox.create({
      _id,
      source,
      envelope: { mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, clientIp: envelope.clientIp ?? null, helo: envelope.helo ?? null, mailbox: envelope.mailbox ?? null },
      rawSha256,
      size: raw.length,
      receivedAt: now,
      availableAt: now,
    });
    return { id: doc._id, rawSha256 };
  } catch (err) {
    throw new StoreUnavailableError(`could not store the message: ${(err as Error).message}`, { cause: err });
  }
}
