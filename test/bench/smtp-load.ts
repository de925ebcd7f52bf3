import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { BenchMail } from './corpus.ts';

/** Wall-clock milliseconds with sub-millisecond resolution (comparable with Date values). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface Delivery {
  index: number;
  code: number;
  /** When the last byte of DATA (the final ".") was written. */
  endOfDataAt: number;
  /** When the reply to DATA arrived. */
  repliedAt: number;
}

export interface LoadResult {
  deliveries: Delivery[];
  startedAt: number;
  finishedAt: number;
}

/**
 * One SMTP client connection, driven command by command. Hand-written rather than nodemailer
 * so that the time from the end of DATA to the server's reply can be taken exactly, without
 * the envelope round trips or a pool's queueing in it.
 */
export class Connection {
  private buffer = '';
  private lines: string[] = [];
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, nl).replace(/\r$/, ''));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.wake();
    });
    socket.on('error', (err) => {
      this.failure = err;
      this.wake();
    });
    socket.on('close', () => {
      this.failure ??= new Error('connection closed');
      this.wake();
    });
  }

  static async open(port: number): Promise<Connection> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const conn = new Connection(socket);
    await conn.expect(220);
    await conn.command('EHLO bench.example', 250);
    return conn;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async reply(): Promise<{ code: number; text: string }> {
    const got: string[] = [];
    for (;;) {
      while (this.lines.length) {
        const line = this.lines.shift()!;
        got.push(line);
        if (/^\d{3}(?: |$)/.test(line)) return { code: Number(line.slice(0, 3)), text: got.join('\n') };
      }
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private async expect(code: number): Promise<void> {
    const r = await this.reply();
    if (r.code !== code) throw new Error(`expected ${code}, got: ${r.text}`);
  }

  async command(line: string, code: number): Promise<void> {
    this.socket.write(`${line}\r\n`);
    await this.expect(code);
  }

  async send(mail: BenchMail, to: string): Promise<Delivery> {
    await this.command(`MAIL FROM:<${mail.from}> SIZE=${mail.size}`, 250);
    await this.command(`RCPT TO:<${to}>`, 250);
    await this.command('DATA', 354);
    const endOfDataAt = await new Promise<number>((resolve) => this.socket.write(mail.data, () => resolve(nowMs())));
    const r = await this.reply();
    return { index: mail.index, code: r.code, endOfDataAt, repliedAt: nowMs() };
  }

  async quit(): Promise<void> {
    this.socket.write('QUIT\r\n');
    await this.reply().catch(() => undefined);
    this.socket.destroy();
  }
}

/** Sends every mail, in order, over `connections` parallel connections (a client's pool). */
export async function deliverAll(port: number, mails: BenchMail[], to: string, connections = 5): Promise<LoadResult> {
  const pool = await Promise.all(Array.from({ length: connections }, () => Connection.open(port)));
  const deliveries: Delivery[] = new Array(mails.length);
  let next = 0;
  const startedAt = nowMs();
  await Promise.all(
    pool.map(async (conn) => {
      while (next < mails.length) {
        const mail = mails[next++]!;
        deliveries[mail.index] = await conn.send(mail, to);
      }
    }),
  );
  const finishedAt = nowMs();
  await Promise.all(pool.map((c) => c.quit()));
  return { deliveries, startedAt, finishedAt };
}

export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
