import type { Types } from 'mongoose';
import { toBuffer } from '../../db/blobs.ts';
import { enqueueWork } from '../../db/coordination/index.ts';
import type { OutboxMail } from '../../db/models/outbox.ts';
import type { Store } from '../../db/store.ts';
import { readableMail, type ReadableMail } from '../parse/readable.ts';

/** The outbox listing leaves the MIME source out: it can be large, and a list never shows it. */
const WITHOUT_RAW = { raw: 0 } as const;

export const isOutboxId = (id: string) => /^[0-9a-f]{24}$/i.test(id);

/** Mail kept in the database because no relay is configured, newest first. */
export function capturedMails(store: Store, limit: number): Promise<OutboxMail[]> {
  return store.models.Outbox.find({ state: 'captured' }, WITHOUT_RAW).sort({ createdAt: -1 }).limit(limit).lean<OutboxMail[]>();
}

/**
 * Mail the relay refused (or that ran out of retries), and mail still being retried after the
 * relay deferred it, newest first. Reads the outbox by state: what is in trouble is few, but on
 * engines without index use this scans the outbox, so it serves a page an agent opens, not a loop.
 */
export async function troubledMails(store: Store, limit: number): Promise<{ failed: OutboxMail[]; deferred: OutboxMail[] }> {
  const { Outbox } = store.models;
  const [failed, deferred] = await Promise.all([
    Outbox.find({ state: 'failed' }, WITHOUT_RAW).sort({ updatedAt: -1 }).limit(limit).lean<OutboxMail[]>(),
    Outbox.find({ state: 'queued', lastError: { $ne: null } }, WITHOUT_RAW).sort({ dueAt: 1 }).limit(limit).lean<OutboxMail[]>(),
  ]);
  return { failed, deferred };
}

export function outboxMail(store: Store, id: string): Promise<OutboxMail | null> {
  if (!isOutboxId(id)) return Promise.resolve(null);
  return store.models.Outbox.findById(id).lean<OutboxMail>();
}

/** The MIME message of a captured (or sent-and-kept) mail, decoded for reading; null when none is kept. */
export async function readOutboxMail(mail: Pick<OutboxMail, 'raw'>): Promise<ReadableMail | null> {
  if (!mail.raw) return null;
  return readableMail(toBuffer(mail.raw));
}

/**
 * Sends a failed mail again: the same message (its Message-ID and Date were fixed when it was
 * queued), with a fresh round of attempts. The item is made `queued` before its queue entry is
 * written: an entry whose item is not queued yet would be dropped by a worker; an item left
 * without its entry by a crash in between is queued again by housekeeping. Returns the mail, or
 * null when it is not failed (any more).
 */
export async function retryFailedMail(store: Store, id: Types.ObjectId | string, now: Date): Promise<OutboxMail | null> {
  const { Outbox, OutboxQueue } = store.models;
  const mail = await Outbox.findOneAndUpdate(
    { _id: id, state: 'failed' },
    { $set: { state: 'queued', attempts: 0, dueAt: now } },
    { returnDocument: 'after' },
  ).lean<OutboxMail>();
  if (!mail) return null;
  await enqueueWork(OutboxQueue, [mail._id], now);
  return mail;
}

/** Gives up a failed mail for good: it leaves the list of mail to look at. Null when it is not failed. */
export function cancelFailedMail(store: Store, id: Types.ObjectId | string): Promise<OutboxMail | null> {
  return store.models.Outbox.findOneAndUpdate({ _id: id, state: 'failed' }, { $set: { state: 'cancelled' } }, { returnDocument: 'after' }).lean<OutboxMail>();
}
