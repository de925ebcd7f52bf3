import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { parseMessage } from '../../src/mail/parse/parse.ts';
import { nowMs } from './smtp-load.ts';

export interface Arrival {
  /** Envelope recipients. */
  to: string[];
  at: number;
}

/**
 * An SMTP server that accepts everything and keeps only who each message was for and when:
 * either the ceiling (parse = true: every message through mailparser before its 250) or the
 * capture relay helpgate delivers its outbound mail to.
 */
export class SinkServer {
  readonly arrivals: Arrival[] = [];
  private readonly waiters = new Set<() => void>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: SMTPServer,
    readonly port: number,
  ) {}

  static async listen(parse: boolean): Promise<SinkServer> {
    let sink!: SinkServer;
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      hideSTARTTLS: true,
      logger: false,
      size: 25 * 1024 * 1024,
      maxClients: 200,
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.once('end', () => {
          const done = parse ? parseMessage(Buffer.concat(chunks)).then(() => undefined) : Promise.resolve();
          done.then(
            () => {
              sink.arrived({ to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()), at: nowMs() });
              cb(null, 'Ok');
            },
            (err: Error) => cb(err),
          );
        });
      },
    });
    server.on('error', () => {}); // a client dropping its connection is not the benchmark's failure
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    sink = new SinkServer(server, (server.server.address() as AddressInfo).port);
    return sink;
  }

  get received(): number {
    return this.arrivals.length;
  }

  /** When the last message arrived (NaN before the first). */
  get lastAt(): number {
    return this.arrivals.at(-1)?.at ?? NaN;
  }

  /** Resolves with the first arrival from index `from` on that matches, or null after `timeoutMs`. */
  async waitFor(match: (a: Arrival) => boolean, from: number, timeoutMs: number): Promise<Arrival | null> {
    const deadline = nowMs() + timeoutMs;
    for (let i = from; ; ) {
      for (; i < this.arrivals.length; i++) if (match(this.arrivals[i]!)) return this.arrivals[i]!;
      const left = deadline - nowMs();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }

  close(): Promise<void> {
    return (this.closing ??= new Promise((resolve) => this.server.close(() => resolve())));
  }

  private arrived(a: Arrival): void {
    this.arrivals.push(a);
    for (const wake of [...this.waiters]) wake();
  }
}
