import { Types } from 'mongoose';
import { insertInboxItems, keptInItem, MAX_INBOX_BATCH, queueInboxItems, withdrawInboxItems, type NewInboxItem } from '../../db/inbox-batch.ts';
import { sha256 } from '../../db/blobs.ts';
import type { Store } from '../../db/store.ts';
import { errorMessage, StoreUnavailableError } from '../../errors/errors.ts';

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

export interface IncomingMessage {
  source: 'smtp' | 'pipe' | 'imap';
  raw: Buffer;
  envelope: Envelope;
}

/*
 * How a batch of received messages becomes durable, and why in this order.
 *
 * Three writes per batch, each one insertMany, journaled and acknowledged by a majority (the
 * first two side by side, and beside the previous batch's third):
 *   1. the raw bytes of large messages (content-addressed chunks: writing them again is
 *      harmless; a small message is kept in its item);
 *   2. the queue entries: the ingest worker finds items only through them, and drops an entry
 *      whose item still does not exist after a while;
 *   3. the inbox items: the commit point. Until they exist, nothing of the batch is ingested
 *      or listed by `helpgate inbox`; once they do, the whole batch is (at most
 *      MAX_INBOX_BATCH items, which the engine commits at once: db/inbox-batch.ts).
 * The senders get 250 only after step 3. If any step fails they get 451 and will send again,
 * so the batch is withdrawn (items untouched by ingest, then orphan queue entries) at once,
 * and again on a short backoff while the database does not answer: that covers an engine
 * that kept part of an insert, or an insert that landed although its answer was lost.
 * Left behind: chunks nobody references (harmless; a resend reuses them) and the queue
 * entries of a process that died before withdrawing (the claim drops them). Not covered: a
 * lost answer whose items ingest takes before the withdrawal reaches them (or the process
 * dies first): such a message is ticketed although its sender got 451; its resend is then
 * recognised by its Message-ID, when it has one.
 */

const unavailable = (err: unknown) => new StoreUnavailableError(`could not store the message: ${errorMessage(err)}`, { cause: err });

/** Steps 1 and 2 for a batch under the given item ids (see above); returns its items, not yet written. */
async function stageBatch(store: Store, messages: readonly IncomingMessage[], ids: readonly Types.ObjectId[]): Promise<NewInboxItem[]> {
  const now = new Date();
  // A small message travels inside its item (one write less per batch); a large one goes to
  // chunks first. Side by side with the queue entries: neither makes anything visible.
  const large = messages.filter((m) => !keptInItem(m.raw)).map((m) => m.raw);
  await settledBoth(store.blobs.putMany(large), queueInboxItems(store, ids, now));
  return messages.map((m, i) => ({
    _id: ids[i]!,
    source: m.source,
    envelope: {
      mailFrom: m.envelope.mailFrom,
      rcptTo: m.envelope.rcptTo,
      clientIp: m.envelope.clientIp ?? null,
      helo: m.envelope.helo ?? null,
      mailbox: m.envelope.mailbox ?? null,
    },
    rawSha256: sha256(m.raw),
    raw: keptInItem(m.raw) ? m.raw : null,
    size: m.raw.length,
    receivedAt: now,
  }));
}

const stored = (items: readonly NewInboxItem[]): StoredItem[] => items.map((item) => ({ id: item._id, rawSha256: item.rawSha256 }));

/** Both results once both have settled (a withdrawal must not race a write still in flight); the first failure otherwise. */
async function settledBoth<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
  return [ra.value, rb.value];
}

const newIds = (n: number) => Array.from({ length: n }, () => new Types.ObjectId());

/**
 * Stores one received message (the pipe and IMAP intakes: a batch of one). Resolves once it
 * is durable, so the caller may answer "250" / exit 0 / mark it read. A failure is a
 * StoreUnavailableError: answer "try later".
 */
export async function storeInboxItem(store: Store, source: IncomingMessage['source'], raw: Buffer, envelope: Envelope): Promise<StoredItem> {
  const ids = newIds(1);
  try {
    const items = await stageBatch(store, [{ source, raw, envelope }], ids);
    await insertInboxItems(store, items);
    return stored(items)[0]!;
  } catch (err) {
    // One attempt: a one-shot caller (the pipe) is gone before a retry could run (what may
    // be left then: see the notes above).
    const withdrawError = await withdrawInboxItems(store, ids).then(
      () => null,
      (e: unknown) => e,
    );
    if (withdrawError) throw unavailable(new AggregateError([err, withdrawError], `${errorMessage(err)} (not withdrawn either: ${errorMessage(withdrawError)})`));
    throw unavailable(err);
  }
}

interface Waiting {
  message: IncomingMessage;
  resolve: (item: StoredItem) => void;
  reject: (err: Error) => void;
}

export interface GroupCommitOptions {
  /** Most messages in one batch (and at most MAX_INBOX_BATCH). */
  maxMessages?: number;
  /** A batch stops growing past this many bytes of raw messages (one larger message still goes alone). */
  maxBytes?: number;
  /** Told when a failed batch could not be withdrawn yet (it is retried). */
  onWithdrawError?: (err: unknown, count: number) => void;
}

/**
 * Group commit for a busy intake (SMTP): one commit at a time; the messages that complete
 * while it is in flight wait and go together in the next batch. No timer: a lone message is
 * written at once, and under load a batch is whatever arrived during the previous write.
 */
export class InboxGroupWriter {
  private readonly waiting: Waiting[] = [];
  private writing = false;
  /** Wakes a drain loop that waits for its commit, when a message arrives meanwhile. */
  private arrived: (() => void) | null = null;
  private readonly maxMessages: number;
  private readonly maxBytes: number;
  /** Failed batches not yet withdrawn (the database did not answer). */
  private readonly toWithdraw: Types.ObjectId[][] = [];
  private withdrawTimer: NodeJS.Timeout | null = null;
  private withdrawDelayMs = 250;
  private closed = false;

  constructor(
    private readonly db: Store,
    private readonly opts: GroupCommitOptions = {},
  ) {
    this.maxMessages = Math.min(opts.maxMessages ?? MAX_INBOX_BATCH, MAX_INBOX_BATCH);
    this.maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
  }

  /** Resolves when the batch holding the message is durable; rejects with StoreUnavailableError if it failed. */
  store(message: IncomingMessage): Promise<StoredItem> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ message, resolve, reject });
      this.arrived?.();
      void this.drain();
    });
  }

  /** Stops retrying withdrawals (what is left is dropped by the claims: see above). */
  close(): void {
    this.closed = true;
    if (this.withdrawTimer) clearTimeout(this.withdrawTimer);
    this.withdrawTimer = null;
  }

  private takeBatch(): Waiting[] {
    let bytes = 0;
    let n = 0;
    while (n < this.waiting.length && n < this.maxMessages) {
      const size = this.waiting[n]!.message.raw.length;
      if (n > 0 && bytes + size > this.maxBytes) break;
      bytes += size;
      n++;
    }
    return this.waiting.splice(0, n);
  }

  /**
   * Two batches at most in flight, one per stage: while one batch's items are written (the
   * commit), the next one's chunks and queue entries are; commits stay one at a time, in order.
   */
  private async drain(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    let committing: Promise<void> = Promise.resolve();
    try {
      for (;;) {
        if (!this.waiting.length) {
          // Until the commit in flight ends, or a message arrives to be staged beside it.
          let done = false;
          await Promise.race([committing.then(() => (done = true)), new Promise<void>((resolve) => (this.arrived = resolve))]);
          this.arrived = null;
          if (!this.waiting.length) {
            if (done) break;
            continue;
          }
        }
        const batch = this.takeBatch();
        const ids = newIds(batch.length);
        const staged = stageBatch(
          this.db,
          batch.map((w) => w.message),
          ids,
        ).then(
          (items) => ({ items }),
          (err: unknown) => ({ err }),
        );
        const previous = committing;
        const outcome = await staged;
        await previous;
        committing = ('err' in outcome ? Promise.reject(outcome.err) : insertInboxItems(this.db, outcome.items)).then(
          () => {
            const items = stored((outcome as { items: NewInboxItem[] }).items);
            batch.forEach((w, i) => w.resolve(items[i]!));
          },
          (err: unknown) => {
            // The senders hear 451 at once; the withdrawal runs beside the next batches.
            for (const w of batch) w.reject(unavailable(err));
            this.scheduleWithdrawal(ids);
          },
        );
      }
    } finally {
      this.writing = false;
    }
  }

  private scheduleWithdrawal(ids: Types.ObjectId[]): void {
    this.toWithdraw.push(ids);
    this.armWithdrawTimer(0);
  }

  private armWithdrawTimer(delayMs: number): void {
    if (this.closed || this.withdrawTimer || !this.toWithdraw.length) return;
    this.withdrawTimer = setTimeout(() => {
      void this.withdrawPending().then(() => {
        this.withdrawTimer = null;
        this.armWithdrawTimer(this.withdrawDelayMs);
      });
    }, delayMs);
    this.withdrawTimer.unref();
  }

  /** Withdraws the failed batches the database did not answer for before; keeps those it still does not. */
  private async withdrawPending(): Promise<void> {
    while (this.toWithdraw.length) {
      const ids = this.toWithdraw[0]!;
      try {
        await withdrawInboxItems(this.db, ids);
      } catch (err) {
        this.opts.onWithdrawError?.(err, ids.length);
        // Short: the sooner the database answers, the less a lost answer can be ingested first.
        this.withdrawDelayMs = Math.min(this.withdrawDelayMs * 2, 1000);
        return;
      }
      this.toWithdraw.shift();
      this.withdrawDelayMs = 250;
    }
  }
}
