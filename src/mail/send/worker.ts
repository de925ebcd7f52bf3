import { randomUUID } from 'node:crypto';
import nodemailer, { type Transporter } from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { claimNext, type QueueEntry, deferWork, finishWork, SlotLocks, updateIfStillMine } from '../../db/claims.ts';
import type { OutboxMail } from '../../db/models/outbox.ts';
import type { Store } from '../../db/store.ts';
import { errorMessage } from '../../errors/errors.ts';
import { PollLoop } from '../../jobs/poll-loop.ts';
import type { Logger } from '../../log/logger.ts';

export interface OutboxWorkerOptions {
  store: Store;
  log: Logger;
  /** smtp:// or smtps:// relay; without one, mail is captured in the database. */
  relayUrl?: string | undefined;
  /** Delay before retry n (seconds); when the table runs out the mail has failed. */
  backoffSeconds: readonly number[];
  leaseSeconds: number;
  /** Told when a mail is given up, so the ticket can record it. Send never imports domain. */
  onFailed?: (mail: OutboxMail, error: string) => Promise<void>;
}

/** What a failed attempt means: defer (4xx, network) → retry later; reject (5xx) → failed now. */
export function classifyFailure(err: unknown): 'defer' | 'reject' {
  const code = (err as { responseCode?: unknown }).responseCode;
  return typeof code === 'number' && code >= 500 && code < 600 ? 'reject' : 'defer';
}

function toMessage(mail: OutboxMail): Mail.Options {
  return {
    from: mail.from,
    to: mail.to,
    cc: mail.cc.length ? mail.cc : undefined,
    replyTo: mail.replyTo ?? undefined,
    subject: mail.subject,
    messageId: mail.messageId,
    inReplyTo: mail.inReplyTo ?? undefined,
    references: mail.references.length ? mail.references : undefined,
    date: mail.date,
    headers: mail.headers.map((h) => ({ key: h.key, value: h.value })),
    text: mail.text,
    html: mail.html ?? undefined,
    envelope: { from: mail.envelopeFrom, to: [...mail.to, ...mail.cc] },
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

/**
 * Sends what the outbox holds. Each due mail is claimed with a lease (db/claims.ts), so any
 * number of helpgate processes can run workers on one database; a worker that dies leaves a
 * lease that simply expires.
 */
export class OutboxWorker {
  private readonly id = `outbox-${randomUUID()}`;
  private readonly loop: PollLoop;
  private readonly relay: Transporter | null;
  private readonly capture: Transporter;
  private readonly locks: SlotLocks;
  private readonly buffer: QueueEntry[] = [];

  constructor(private readonly opts: OutboxWorkerOptions) {
    this.relay = opts.relayUrl ? nodemailer.createTransport(opts.relayUrl, { pool: true, maxConnections: 3 } as never) : null;
    this.locks = new SlotLocks(opts.store.models.Lock, opts.leaseSeconds * 1000);
    this.capture = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
    this.loop = new PollLoop({
      name: 'outbox',
      step: () => this.step(),
      concurrency: 2,
      idleMs: 1000,
      onError: (err) => opts.log.error({ err: errorMessage(err) }, 'outbox worker error'),
    });
  }

  start(): void {
    this.loop.start();
  }

  kick(): void {
    this.loop.kick();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    this.relay?.close();
  }

  /** Claims and handles one due mail; false when none is due. */
  async step(): Promise<boolean> {
    const now = new Date();
    const leaseMs = this.opts.leaseSeconds * 1000;
    const claim = await claimNext<OutboxMail>({
      model: this.opts.store.models.Outbox,
      queue: this.opts.store.models.OutboxQueue,
      locks: this.locks,
      name: 'outbox',
      owner: this.id,
      now,
      leaseMs,
      update: (doc) => ({ $set: { dueAt: new Date(now.getTime() + leaseMs), lockedBy: this.id, attempts: doc.attempts + 1 } }),
      buffer: this.buffer,
      isClaimable: (doc) => doc.state === 'queued',
    });
    if (!claim) return false;
    try {
      await this.deliver(claim.doc);
    } finally {
      await this.locks.release(claim.lease);
    }
    return true;
  }

  private async deliver(mail: OutboxMail): Promise<void> {
    const { Outbox, OutboxQueue } = this.opts.store.models;
    // The mail first, then its queue entry (a stale entry is dropped by the next claim).
    const settle = async (update: Record<string, unknown>, retryAt: Date | null = null) => {
      if (!(await updateIfStillMine(Outbox, mail._id, this.id, update))) return;
      if (retryAt) await deferWork(OutboxQueue, mail._id, retryAt);
      else await finishWork(OutboxQueue, mail._id);
    };
    const log = this.opts.log.child({ outboxId: String(mail._id), kind: mail.kind, ticket: mail.ticketNumber });
    if (!this.relay) {
      const info = await this.capture.sendMail(toMessage(mail));
      await settle({ $set: { state: 'captured', raw: info.message as Buffer, sentAt: new Date(), lockedBy: null } });
      log.info({ to: mail.to }, 'mail captured (no relay configured)');
      return;
    }
    try {
      const info = await this.relay.sendMail(toMessage(mail));
      await settle({ $set: { state: 'sent', response: info.response, sentAt: new Date(), lockedBy: null, lastError: null } });
      log.info({ to: mail.to, response: info.response }, 'mail sent');
    } catch (err) {
      const message = errorMessage(err);
      const verdict = classifyFailure(err);
      const delay = this.opts.backoffSeconds[mail.attempts - 1];
      if (verdict === 'reject' || delay === undefined) {
        const reason = verdict === 'reject' ? message : `gave up after ${mail.attempts} attempts: ${message}`;
        await settle({ $set: { state: 'failed', lastError: reason, lockedBy: null } });
        log.warn({ to: mail.to, err: reason }, 'mail failed');
        await this.opts.onFailed?.(mail, reason);
      } else {
        const retryAt = new Date(Date.now() + delay * 1000);
        await settle({ $set: { lastError: message, dueAt: retryAt, lockedBy: null } }, retryAt);
        log.info({ to: mail.to, err: message, retryInSeconds: delay }, 'mail deferred');
      }
    }
  }
}
