import type { Types } from 'mongoose';
import type { OutboxMail } from '../../db/models/outbox.ts';
import type { Store } from '../../db/store.ts';
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
  const { Outbox } = store.models;
  // Insert first and let the unique index on `key` say "already queued": looking the key up
  // first costs a scan of the whole outbox on FerretDB 1.24, which pushes down only {_id}.
  const now = new Date();
  try {
    const doc = await Outbox.create({
      ...draft,
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
    const mail = await Outbox.findOne({ key: draft.key }).lean<OutboxMail>();
    return { mail: mail!, created: false };
  }
}
