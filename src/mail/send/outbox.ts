import type { Types } from 'mongoose';
import type { OutboxMail } from '../../db/models/outbox.ts';
import type { Store } from '../../db/store.ts';
import { queueWork } from '../../db/claims.ts';
import { idFor } from '../../db/ids.ts';
import { isDuplicateKeyError } from '../../errors/errors.ts';
import { newMessageId } from './message-id.ts';

export interface OutboundDraft {
  /** Idempotency key: the same key enqueues one mail, however often it is called. */
  key: string;
  kind: string;
  ticketId?: Types.ObjectId | null;
  ticketNumber?: number | null;
  articleId?: Types.ObjectId | null;
  envelopeFrom: string;
  from: string;
  to: string[];
  cc?: string[];
  replyTo?: string | null;
  subject: string;
  inReplyTo?: string | null;
  references?: string[];
  headers?: { key: string; value: string }[];
  text: string;
  html?: string | null;
}

export interface Enqueued {
  mail: OutboxMail;
  /** false when the key was already queued (a re-run), so callers can skip side effects. */
  created: boolean;
}

/**
 * Puts a mail in the outbox. Its Message-ID and Date are fixed here, once, and reused on
 * every retry, so a resend is recognisably the same message.
 */
export async function enqueueMail(store: Store, domain: string, draft: OutboundDraft): Promise<Enqueued> {
  const { Outbox, OutboxQueue } = store.models;
  // The _id derives from the key: a re-run collides on the _id index (atomic on every engine)
  // and finds the queued mail by _id (FerretDB 1.24 answers no other filter from an index).
  // The queue entry goes first; for a mail that turns out to be queued already it is either
  // the same entry or one the worker drops.
  const _id = idFor('outbox', draft.key);
  const now = new Date();
  await queueWork(OutboxQueue, _id, now);
  try {
    const doc = await Outbox.create({
      ...draft,
      _id,
      cc: draft.cc ?? [],
      references: draft.references ?? [],
      headers: draft.headers ?? [],
      messageId: newMessageId(domain),
      date: now,
      dueAt: now,
    });
    return { mail: doc.toObject() as OutboxMail, created: true };
  } catch (err) {
    if (!isDuplicateKeyError(err)) throw err;
    const mail = await Outbox.findById(_id).lean<OutboxMail>();
    if (!mail) throw err;
    return { mail, created: false };
  }
}

/** Whether a mail with this idempotency key is in the outbox (in any state). */
export async function isQueued(store: Store, key: string): Promise<boolean> {
  return !!(await store.models.Outbox.findById(idFor('outbox', key), { _id: 1 }).lean());
}
