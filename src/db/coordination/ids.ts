import { createHash } from 'node:crypto';
import { Types } from 'mongoose';

/**
 * The _id of a document that is unique by an idempotency key (a ticket by the message that
 * opened it, an article by its message, an outbound mail by its key): the first 12 bytes of
 * sha256("<kind>:<key>"). Asking "does this key exist?" becomes a look-up by _id, the one
 * filter FerretDB 1.24 answers from an index (any other filter decodes the whole collection),
 * and two workers inserting the same key collide on the _id index, atomically on every engine.
 */
export function idFor(kind: 'ticket' | 'article' | 'outbox', key: string): Types.ObjectId {
  return new Types.ObjectId(createHash('sha256').update(`${kind}:${key}`).digest('hex').slice(0, 24));
}
