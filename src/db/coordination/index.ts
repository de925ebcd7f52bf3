/**
 * Coordination between helpgate processes: the one place that knows how.
 *
 * Why it is built this way. helpgate runs on MongoDB and on FerretDB 1.24 (SQLite or
 * PostgreSQL backend). Measured on FerretDB, both backends: the only write that is atomic
 * between connections is an insert into a unique index. `$inc`, `findOneAndUpdate`, `$push`
 * and conditional updates ("set X where Y") can all be won by two writers at once, or lose one
 * of them. And every find, update or delete scans its collection, so hot work is kept in small
 * collections and looked up by `_id`. Measured with 20,000 documents: a look-up by one `_id`
 * takes 3–11 ms on SQLite and PostgreSQL, `_id: {$in: [...]}` ~0.6 s on both (findByIds reads by
 * _id instead), a unique indexed field (a ticket's number) ~14 ms on PostgreSQL, ~0.5 s on SQLite. Code that is right on FerretDB is right on MongoDB.
 *
 * So every "exactly one" in helpgate is an insert that can collide:
 *
 * - insertOnce / insertManyOnce (insert-once.ts): a document keyed by an idempotency key is
 *   stored once; a re-run finds the stored one. That is how a crash at any point is repaired by
 *   running the same step again.
 * - insertNumbered (numbers.ts): the next number of a sequence (ticket numbers), taken by
 *   inserting the numbered document itself into a unique index: one insert at a time per process, so a crash leaves no gap; no counters.
 * - appendSlot (slots.ts): the next free position of a list ("<list>#<n>") for lists that many
 *   writers append to at once.
 * - countInWindow (window.ts): at most N events per key and time window (rate limits).
 * - Lease (lease.ts): "one process does this for a while" (a timer, the mail of one address),
 *   lapsing by itself when its holder dies.
 * - WorkQueue and QueueWorker (work-queue.ts, queue-worker.ts): the claim → handle → settle
 *   loop of the inbox and the outbox, claiming and settling in batches; requeueStranded
 *   repairs items left without a queue entry.
 * - EpochLease (epoch-lease.ts): a long-held, renewed lease (reading one IMAP mailbox).
 * - idFor (ids.ts): the _id of a document that is unique by an idempotency key.
 * - converge (converge.ts): a field that several writers change at once (a copy of facts held
 *   elsewhere), written and read back until the change shows.
 *
 * Insert batches: FerretDB commits an insertMany in transactions of 100 documents (its
 * --test-batch-size; measured on SQLite and on PostgreSQL: killed in the middle of inserting
 * 5,000 documents, it kept a multiple of 100). So a batch of at most 100 documents is stored
 * whole or not at all; the SMTP intake's group commit relies on it (db/inbox-batch.ts).
 *
 * Callers ask for these by intent; nothing outside this folder handles lock documents, slots
 * or duplicate-key errors.
 */
export { converge, type Converged } from './converge.ts';
export { EpochLease } from './epoch-lease.ts';
export { findByIds, idFor } from './ids.ts';
export { insertManyOnce, insertOnce, tryInsert, upsertById } from './insert-once.ts';
export { Lease, type Held } from './lease.ts';
export { insertNumbered } from './numbers.ts';
export { appendSlot, readSlots } from './slots.ts';
export { countInWindow, sweepWindows } from './window.ts';
export { countQueued, dropWork, enqueueWork, requeueStranded, unclaimedOf, WorkQueue, type Claimed, type Settlement } from './work-queue.ts';
export { QueueWorker, type QueueWorkerOptions } from './queue-worker.ts';
