import { Types } from 'mongoose';
import type { Store } from '../../db/store.ts';
import { StoreUnavailableError } from '../../errors/errors.ts';
import type { Envelope } from './inbox-writer.ts';

/**
 * Records a message too large to take: its header block (not the body) as an inbox item that
 * `helpgate inbox` shows as ignored with the reason, and an intake notice so that the domain
 * tells the sender (once: the notice's key is the hash of the headers, the same however often
 * the message is seen). The item first: a notice always has its item.
 */
export async function recordTooLarge(
  store: Store,
  headers: Buffer,
  envelope: Envelope,
  info: { size: number; limit: number; mailbox: string; folder: string },
): Promise<Types.ObjectId> {
  try {
    const rawSha256 = await store.blobs.put(headers);
    const now = new Date();
    const _id = new Types.ObjectId();
    await store.models.Inbox.create({
      _id,
      source: 'imap',
      envelope: { mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, clientIp: null, helo: envelope.helo ?? null, mailbox: info.mailbox },
      rawSha256,
      size: info.size,
      receivedAt: now,
      availableAt: now,
      state: 'ignored',
      note: `too large: ${info.size} bytes, MAX_MESSAGE_SIZE is ${info.limit}; moved to the folder "${info.folder}" of mailbox ${info.mailbox}; only its headers are kept here`,
    });
    await store.models.IntakeNotice.create({ _id, kind: 'too-large', key: `too-large:${rawSha256}`, mailbox: info.mailbox, size: info.size, limit: info.limit, folder: info.folder, createdAt: now });
    return _id;
  } catch (err) {
    throw new StoreUnavailableError(`could not record the too-large message: ${(err as Error).message}`, { cause: err });
  }
}
