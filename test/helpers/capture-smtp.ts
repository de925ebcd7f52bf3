import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { parseMessage, type ParsedMessage } from '../../src/mail/parse/parse.ts';
import { until } from './wait.ts';

export interface CapturedMail {
  envelope: { mailFrom: string | null; rcptTo: string[] };
  raw: Buffer;
  parsed: ParsedMessage;
  /** Header value by lower-case name. */
  header(name: string): string | null;
}

/** What the relay answers to a DATA; return null to accept. */
export type RelayVerdict = (mail: { rcptTo: string[]; raw: Buffer; attempt: number }) => { code: number; message: string } | null;

/**
 * A real SMTP server standing in for the outbound relay: it receives what helpgate sends,
 * keeps every mail, and can answer with 4xx/5xx on demand.
 */
export class CaptureSmtp {
  readonly mails: CapturedMail[] = [];
  attempts = 0;
  verdict: RelayVerdict = () => null;
  /** Awaited before the relay answers a DATA: lets a test keep a send in flight. */
  hold: (mail: { rcptTo: string[] }) => Promise<void> = async () => {};
  private server: SMTPServer;
  port = 0;

  constructor() {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      logger: false,
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', async () => {
          const raw = Buffer.concat(chunks);
          this.attempts++;
          const rcptTo = session.envelope.rcptTo.map((r) => r.address.toLowerCase());
          await this.hold({ rcptTo });
          const v = this.verdict({ rcptTo, raw, attempt: this.attempts });
          if (v) {
            const err = Object.assign(new Error(v.message), { responseCode: v.code });
            return cb(err);
          }
          const parsed = await parseMessage(raw);
          this.mails.push({
            envelope: { mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : null, rcptTo },
            raw,
            parsed,
            header: (name) => parsed.headers.find((h) => h.key === name.toLowerCase())?.value ?? null,
          });
          cb(null);
        });
      },
    });
    // A sender that drops its connection (a helpgate killed mid-delivery) is that sender's
    // business; without a listener smtp-server would raise it in the test process.
    this.server.on('error', () => {});
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Mails to `address` (To or Cc), in arrival order. */
  to(address: string): CapturedMail[] {
    const a = address.toLowerCase();
    return this.mails.filter((m) => m.envelope.rcptTo.includes(a));
  }

  async waitFor(pred: (m: CapturedMail) => boolean, what = 'a captured mail', timeoutMs = 20_000): Promise<CapturedMail> {
    return until(() => this.mails.find(pred), { what, timeoutMs });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
