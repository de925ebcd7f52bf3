import type { Types } from 'mongoose';
import type { OutboxMail } from '../../db/models/outbox.ts';
import type { Store } from '../../db/store.ts';
import { enqueueWork, findByIds, idFor, insertManyOnce } from '../../db/coordination/index.ts';
import { messageIdFor, newMessageId } from './message-id.ts';

export { messageIdFor };

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
  /** Who gets this copy, when not everyone in To and Cc (a personal copy with its own Reply-To). */
  envelopeTo?: string[];
  replyTo?: string | null;
  subject: string;
  inReplyTo?: string | null;
  references?: string[];
  headers?: { key: string; value: string }[];
  text: string;
  html?: string | null;
  /** Default: a new one. Given when it had to be known before the mail was queued (messageIdFor). */
  messageId?: string;
}

export interface Enqueued {
  mail: OutboxMail;
  /** false when the key was already queued (a re-run), so callers can skip side effects. */
  created: boolean;
}

/** The _id of the outbound mail with idempotency key `key`, known before it is queued (e.g. for its bounce address). */
export function outboxIdFor(key: string): Types.ObjectId {
  return idFor('outbox', key);
}

/**
 * Puts a mail in the outbox. Its Message-ID and Date are fixed here, once, and reused on
 * every retry, so a resend is recognisably the same message.
 */
export async function enqueueMail(store: Store, domain: string, draft: OutboundDraft): Promise<Enqueued> {
  return (await enqueueMails(store, domain, [draft]))[0]!;
}

/**
 * Puts several mails in the outbox at once (the acknowledgement and the notifications of one
 * message): their queue entries in one insert, then the mails in one insert. Each mail's _id
 * derives from its key, so a mail queued already (a re-run) is found and returned as it is.
 * The entries go first: an entry for a mail that turns out to be queued already is either that
 * mail's own or one the worker drops.
 */
export async function enqueueMails(store: Store, domain: string, drafts: OutboundDraft[]): Promise<Enqueued[]> {
  const { Outbox, OutboxQueue } = store.models;
  if (!drafts.length) return [];
  const now = new Date();
  const docs = drafts.map((draft) => ({
    state: 'queued',
    attempts: 0,
    lastError: null,
    response: null,
    sentAt: null,
    raw: null,
    ticketId: null,
    ticketNumber: null,
    articleId: null,
    replyTo: null,
    inReplyTo: null,
    html: null,
    ...draft,
    _id: outboxIdFor(draft.key),
    cc: draft.cc ?? [],
    references: draft.references ?? [],
    headers: draft.headers ?? [],
    messageId: draft.messageId ?? newMessageId(domain),
    date: now,
    dueAt: now,
    createdAt: now,
    updatedAt: now,
  }));
  await enqueueWork(OutboxQueue, docs.map((d) => d._id), now);
  const inserted = new Set((await insertManyOnce(Outbox, docs)).map(String));
  const existing = docs.length > inserted.size ? await findByIds<OutboxMail>(Outbox, docs.filter((d) => !inserted.has(String(d._id))).map((d) => d._id)) : [];
  const byId = new Map(existing.map((m) => [String(m._id), m]));
  return docs.map((d) => {
    if (inserted.has(String(d._id))) return { mail: d as unknown as OutboxMail, created: true };
    const mail = byId.get(String(d._id));
    if (!mail) throw new Error(`outbox mail ${d.key} collided but cannot be read`);
    return { mail, created: false };
  });
}

/** Whether a mail with this idempotency key is in the outbox (in any state). */
export async function isQueued(store: Store, key: string): Promise<boolean> {
  return !!(await store.models.Outbox.findById(outboxIdFor(key), { _id: 1 }).lean());
}
