import { randomUUID } from 'node:crypto';
import nodemailer, { type Transporter } from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { type Claimed, QueueWorker, type Settlement, WorkQueue } from '../../db/coordination/index.ts';
import type { OutboxMail } from '../../db/models/outbox.ts';
import type { Store } from '../../db/store.ts';
import { errorMessage } from '../../errors/errors.ts';
import type { LoopHealth } from '../../jobs/poll-loop.ts';
import type { Logger } from '../../log/logger.ts';
import { failureClass, metrics } from '../../log/metrics.ts';

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
  /** Every mail, relayed or captured, is signed with this key (DKIM, RFC 6376). */
  dkim?: { domainName: string; keySelector: string; privateKey: string } | undefined;
  /**
   * The stored copy of a mail once it has left (sent, or given up): its text and HTML with the
   * secrets of its links made unusable. Not applied to captured mail, whose stored copy is the
   * only delivery there is.
   */
  redact?: ((mail: OutboxMail) => { text: string; html: string | null }) | undefined;
}

/** What a failed attempt means: defer (4xx, network) → retry later; reject (5xx) → failed now. */
export function classifyFailure(err: unknown): 'defer' | 'reject' {
  const code = (err as { responseCode?: unknown }).responseCode;
  return typeof code === 'number' && code >= 500 && code < 600 ? 'reject' : 'defer';
}

function toMessage(mail: OutboxMail, dkim: OutboxWorkerOptions['dkim']): Mail.Options {
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
    envelope: { from: mail.envelopeFrom, to: mail.envelopeTo?.length ? mail.envelopeTo : [...mail.to, ...mail.cc] },
    disableFileAccess: true,
    disableUrlAccess: true,
    ...(dkim ? { dkim: { ...dkim, headerFieldNames: SIGNED_HEADERS } } : {}),
  };
}

/**
 * The header fields the DKIM signature covers: those a reader sees or threads by, so that none
 * can be changed on the way without the signature failing. From is required (RFC 6376, 5.4).
 */
const SIGNED_HEADERS = 'From:Sender:Reply-To:Subject:Date:Message-ID:To:Cc:MIME-Version:Content-Type:Content-Transfer-Encoding:In-Reply-To:References:Auto-Submitted';

/** Bounds on waiting for the relay (ms). */
const RELAY_TIMEOUTS = { connectionTimeout: 30_000, greetingTimeout: 30_000, socketTimeout: 60_000 };

/** Connections to the relay, each sending one mail at a time. */
const RELAY_CONNECTIONS = 3;
/**
 * Mails claimed together by one lane: one per relay connection, sent side by side and settled
 * as they are sent (settleEach, grouped while a settlement is being written). A mail sent but
 * not yet settled is sent again after a crash (the same message, as SMTP's at-least-once
 * delivery allows): small batches keep that to the few mails in flight at the kill. Larger
 * batches cost fewer claims (measured: 18 against 10 msgs/s through the whole pipeline on the
 * embedded PostgreSQL engine) but a kill on a slow engine then repeated 11 acknowledgements.
 */
const BATCH = RELAY_CONNECTIONS;
const LANES = 2;

/**
 * Sends what the outbox holds. Due mail is claimed in batches with a lease (db/coordination),
 * so any number of helpgate processes can run workers on one database; a worker that dies
 * leaves claims that simply lapse.
 */
export class OutboxWorker {
  private readonly id = `outbox-${randomUUID()}`;
  private readonly worker: QueueWorker<OutboxMail>;
  private readonly relay: Transporter | null;
  private readonly capture: Transporter;

  constructor(private readonly opts: OutboxWorkerOptions) {
    // nodemailer waits minutes for a silent relay by default (10 min of socket inactivity); a
    // batch waits for its slowest mail, so a hung relay is given up on sooner. The batch's claims
    // are extended while it runs (QueueWorker), so a slow send is never sent again by another worker.
    this.relay = opts.relayUrl ? nodemailer.createTransport(opts.relayUrl, { pool: true, maxConnections: RELAY_CONNECTIONS, ...RELAY_TIMEOUTS } as never) : null;
    this.capture = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
    const queue = new WorkQueue<OutboxMail>({
      items: opts.store.models.Outbox,
      queue: opts.store.models.OutboxQueue,
      leaseMs: opts.leaseSeconds * 1000,
      owner: this.id,
      isClaimable: (doc) => doc.state === 'queued',
    });
    this.worker = new QueueWorker({
      name: 'outbox',
      queue,
      batch: BATCH,
      concurrency: LANES,
      settleEach: true,
      handle: (claimed) => this.deliver(claimed),
      onError: (err) => opts.log.error({ err: errorMessage(err) }, 'outbox worker error'),
    });
  }

  start(): void {
    this.worker.start();
  }

  kick(): void {
    this.worker.kick();
  }

  async stop(): Promise<void> {
    await this.worker.stop();
    this.relay?.close();
  }

  health(): LoopHealth {
    return this.worker.health();
  }

  /** The redacted text and HTML to store, when redacting changed them (most mails carry no secret). */
  private redacted(mail: OutboxMail): { text?: string; html?: string | null } {
    const r = this.opts.redact?.(mail);
    return r && (r.text !== mail.text || r.html !== mail.html) ? r : {};
  }

  private async deliver({ doc: mail, attempt }: Claimed<OutboxMail>): Promise<Settlement> {
    const settle = (set: Record<string, unknown>, retryAt: Date | null = null): Settlement => ({ id: mail._id, update: { $set: { ...set, attempts: attempt } }, retryAt });
    const log = this.opts.log.child({ outboxId: String(mail._id), kind: mail.kind, ticket: mail.ticketNumber });
    if (!this.relay) {
      const info = await this.capture.sendMail(toMessage(mail, this.opts.dkim));
      log.info({ to: mail.to }, 'mail captured (no relay configured)');
      metrics.deliveryAttempts.inc({ result: 'captured', class: 'none' });
      return settle({ state: 'captured', raw: info.message as Buffer, sentAt: new Date() });
    }
    try {
      const info = await this.relay.sendMail(toMessage(mail, this.opts.dkim));
      log.info({ to: mail.to, response: info.response }, 'mail sent');
      metrics.deliveryAttempts.inc({ result: 'sent', class: 'none' });
      return settle({ state: 'sent', response: info.response, sentAt: new Date(), lastError: null, ...this.redacted(mail) });
    } catch (err) {
      const message = errorMessage(err);
      const verdict = classifyFailure(err);
      const failure = failureClass((err as { responseCode?: unknown }).responseCode);
      const delay = this.opts.backoffSeconds[attempt - 1];
      if (verdict === 'reject' || delay === undefined) {
        const reason = verdict === 'reject' ? message : `gave up after ${attempt} attempts: ${message}`;
        log.warn({ to: mail.to, err: reason }, 'mail failed');
        metrics.deliveryAttempts.inc({ result: 'failed', class: failure });
        // Recorded on the ticket before the mail is settled: a crash in between tells it twice at most.
        await this.opts.onFailed?.({ ...mail, attempts: attempt }, reason);
        return settle({ state: 'failed', lastError: reason, ...this.redacted(mail) });
      }
      const retryAt = new Date(Date.now() + delay * 1000);
      log.info({ to: mail.to, err: message, retryInSeconds: delay }, 'mail deferred');
      metrics.deliveryAttempts.inc({ result: 'deferred', class: failure });
      return settle({ lastError: message, dueAt: retryAt }, retryAt);
    }
  }
}
