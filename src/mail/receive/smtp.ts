import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Store } from '../../db/store.ts';
import { errorMessage, SmtpReplyError } from '../../errors/errors.ts';
import type { Logger } from '../../log/logger.ts';
import { InboxGroupWriter } from './inbox-writer.ts';
import type { OwnAddresses } from '../parse/own-addresses.ts';
import { SessionLimits } from './session-limits.ts';
import { metrics } from '../../log/metrics.ts';

export interface SmtpIntakeOptions {
  store: Store;
  log: Logger;
  recipients: OwnAddresses;
  maxMessageSize: number;
  /** Name we greet with. */
  hostname: string;
  /** Called after a message is stored, to wake the ingest worker. */
  onStored?: (id: string) => void;
  /**
   * Asked at each connection: a reason to refuse all mail now (the database cannot take it),
   * answered 421 so that the client keeps its mail and retries; null when ready.
   */
  notReady?: () => Error | null;
  limits: {
    /** Sessions at once, all clients together. */
    maxClients: number;
    maxClientsPerAddress: number;
    idleSeconds: number;
    maxJunkCommands: number;
  };
}

function reply(code: number, text: string): SmtpReplyError {
  return new SmtpReplyError(code, text);
}

/** Reads DATA into memory up to the size limit; past it, only counts (the client gets 552). */
function readData(stream: SMTPServerDataStream, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    stream.once('error', reject);
    stream.once('end', () => resolve(stream.sizeExceeded || size > limit ? null : Buffer.concat(chunks, size)));
  });
}

/**
 * The SMTP listener for mail to the helpdesk. It only speaks the protocol: it checks size
 * and recipients, stores the message with its envelope, and answers 250 only once stored.
 */
export class SmtpIntake {
  private readonly server: SMTPServer;
  private readonly opts: SmtpIntakeOptions;
  /** Messages whose DATA ends while a write is in flight are stored together in the next one. */
  private readonly writer: InboxGroupWriter;
  private readonly limits: SessionLimits;
  lastMessageAt: Date | null = null;

  constructor(opts: SmtpIntakeOptions) {
    this.opts = opts;
    this.writer = new InboxGroupWriter(opts.store, {
      onWithdrawError: (err, count) => opts.log.warn({ err: errorMessage(err), count }, 'could not yet withdraw a failed batch, will retry'),
    });
    this.limits = new SessionLimits({ maxPerAddress: opts.limits.maxClientsPerAddress, idleMs: opts.limits.idleSeconds * 1000, maxJunkCommands: opts.limits.maxJunkCommands });
    this.server = new SMTPServer({
      name: opts.hostname,
      // The greeting reads "220 <name> ESMTP helpgate".
      banner: 'helpgate',
      size: opts.maxMessageSize,
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      hideSTARTTLS: true,
      // Every reply carries an RFC 3463 code (250 2.1.0, 550 5.1.1, 552 5.3.4, 451 4.3.0…):
      // smtp-server adds it, so the texts below carry none of their own.
      hideENHANCEDSTATUSCODES: false,
      logger: false,
      maxClients: opts.limits.maxClients,
      socketTimeout: 120_000,
      onConnect: (session, cb) => {
        const refusal = this.opts.notReady?.() ?? this.limits.onConnect(session);
        if (refusal) metrics.intakeReplies.inc({ channel: 'smtp', code: String((refusal as { responseCode?: number }).responseCode ?? 421) });
        cb(refusal);
      },
      onClose: (session) => this.limits.onClose(session),
      // A declared SIZE over the limit is refused by smtp-server itself (552 5.3.4).
      onMailFrom: (_address, session, cb) => {
        this.limits.touch(session);
        cb();
      },
      onRcptTo: (address, session, cb) => {
        this.limits.touch(session);
        this.onRcptTo(address, cb);
      },
      onData: (stream, session, cb) => {
        this.limits.touch(session);
        this.onData(stream, session).then(
          (id) => {
            // The next transaction (or QUIT) has the whole idle period again.
            this.limits.touch(session);
            cb(null, `Ok: queued as ${id}`);
          },
          (err) => cb(err),
        );
      },
    });
    this.limits.attach(this.server);
    this.server.on('error', (err) => opts.log.warn({ err: err.message }, 'smtp connection error'));
  }

  private onRcptTo(address: { address: string }, cb: (err?: Error | null) => void): void {
    if (!this.opts.recipients.has(address.address)) {
      metrics.intakeReplies.inc({ channel: 'smtp', code: '550' });
      return cb(reply(550, `<${address.address}>: Recipient address rejected: not a helpdesk address`));
    }
    cb();
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const raw = await readData(stream, this.opts.maxMessageSize);
    if (!raw) {
      metrics.intakeReplies.inc({ channel: 'smtp', code: '552' });
      throw reply(552, `Message exceeds the size limit of ${this.opts.maxMessageSize} bytes`);
    }
    const env = session.envelope;
    const mailFrom = env.mailFrom === false ? null : env.mailFrom.address;
    try {
      const item = await this.writer.store({
        source: 'smtp',
        raw,
        envelope: { mailFrom, rcptTo: env.rcptTo.map((r) => r.address.toLowerCase()), clientIp: session.remoteAddress, helo: session.hostNameAppearsAs },
      });
      this.lastMessageAt = new Date();
      metrics.intakeReplies.inc({ channel: 'smtp', code: '250' });
      metrics.messageSize.observe({ channel: 'smtp' }, raw.length);
      this.opts.log.info({ inboxId: String(item.id), size: raw.length, from: mailFrom, rcpt: env.rcptTo.length }, 'message stored');
      this.opts.onStored?.(String(item.id));
      return String(item.id);
    } catch (err) {
      this.opts.log.error({ err: errorMessage(err) }, 'could not store message, answering 451');
      metrics.intakeReplies.inc({ channel: 'smtp', code: '451' });
      throw reply(451, 'Temporary failure storing the message, please try again later');
    }
  }

  get listening(): boolean {
    return this.server.server.listening;
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.server.address() as AddressInfo);
      });
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.limits.close();
    this.writer.close();
  }
}
