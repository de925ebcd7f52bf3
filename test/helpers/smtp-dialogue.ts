import net from 'node:net';

export interface SmtpReply {
  code: number;
  /** All lines of the reply joined with "\n", codes included. */
  text: string;
}

/**
 * A hand-driven SMTP client over a plain socket, for what nodemailer will not do on purpose:
 * declare a SIZE the server advertised as too big (nodemailer refuses that itself, before
 * MAIL FROM), or walk a dialogue command by command.
 */
export class SmtpDialogue {
  private buffer = '';
  private lines: string[] = [];
  private waiter: (() => void) | null = null;
  private closed: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
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
      this.closed = err;
      this.wake();
    });
    socket.on('close', () => {
      this.closed ??= new Error('connection closed');
      this.wake();
    });
  }

  /** Connects and reads the greeting. */
  static async open(port: number, host = '127.0.0.1', localAddress?: string): Promise<{ dialogue: SmtpDialogue; greeting: SmtpReply }> {
    const socket = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const dialogue = new SmtpDialogue(socket);
    return { dialogue, greeting: await dialogue.reply() };
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Reads one (possibly multi-line, "250-…" then "250 …") reply. */
  async reply(): Promise<SmtpReply> {
    const got: string[] = [];
    for (;;) {
      while (this.lines.length) {
        const line = this.lines.shift()!;
        got.push(line);
        if (/^\d{3}(?: |$)/.test(line)) return { code: Number(line.slice(0, 3)), text: got.join('\n') };
      }
      if (this.closed) throw new Error(`no SMTP reply: ${this.closed.message}${got.length ? ` (after ${got.join(' | ')})` : ''}`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** Sends one command line and reads its reply. */
  async command(line: string): Promise<SmtpReply> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  /** Sends a message body after a 354, dot-stuffed and terminated, and reads the final reply. */
  async message(raw: string): Promise<SmtpReply> {
    const body = raw.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    this.socket.write(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`);
    return this.reply();
  }

  /** Resolves once the server has closed the connection. */
  closedByServer(): Promise<void> {
    if (this.socket.destroyed || this.socket.readableEnded) return Promise.resolve();
    return new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  close(): void {
    this.socket.destroy();
  }
}
