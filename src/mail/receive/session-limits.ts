import type { SMTPServer, SMTPServerSession } from 'smtp-server';

export interface SessionLimitOptions {
  /** Sessions one client address may hold at once (SMTP_MAX_CLIENTS_PER_IP). */
  maxPerAddress: number;
  /** A session that starts no mail transaction (MAIL, RCPT, DATA) for this long is closed. */
  idleMs: number;
  /** Commands that move no mail (NOOP, RSET, VRFY, HELP, EHLO/HELO, unknown ones) per session. */
  maxJunkCommands: number;
}

/** What smtp-server's connection offers that the limits use (see connectionOf). */
interface Connection {
  id: string;
  session: SMTPServerSession;
  send(code: number, text: string, context?: false): void;
  close(): void;
  _parser?: { oncommand?: (command: Buffer, callback: () => void) => void };
}

/** Commands that count as mail moving: everything else counts towards maxJunkCommands. */
const MAIL_COMMANDS = new Set(['MAIL', 'RCPT', 'DATA', 'BDAT', 'QUIT', 'STARTTLS', 'AUTH']);

/**
 * Limits that keep one client from holding the intake, as Postfix's anvil does: sessions per
 * client address, an idle deadline that only a mail transaction moves (a client sending NOOP
 * every few seconds is closed all the same), and a cap on commands that move no mail. A client
 * past a limit gets `421 4.7.0` and is disconnected, so a well-behaved MTA retries later.
 *
 * smtp-server has hooks for connect, MAIL, RCPT, DATA and close, but none for "close this
 * session now" or "a command arrived": for those two, this class reaches the server's
 * connection objects (connectionOf). The SMTP limit tests exercise both, so a change inside
 * smtp-server shows there.
 */
export class SessionLimits {
  private readonly perAddress = new Map<string, number>();
  private readonly counted = new Set<string>();
  private readonly idle = new Map<string, NodeJS.Timeout>();
  private server: SMTPServer | null = null;

  constructor(private readonly opts: SessionLimitOptions) {}

  attach(server: SMTPServer): void {
    this.server = server;
  }

  /** smtp-server's onConnect: refuses a client address past its limit; starts the idle clock. */
  onConnect(session: SMTPServerSession): Error | null {
    const address = session.remoteAddress;
    const open = this.perAddress.get(address) ?? 0;
    if (open >= this.opts.maxPerAddress) {
      return Object.assign(new Error(`4.7.0 Too many connections from ${address}, try again later`), { responseCode: 421 });
    }
    this.perAddress.set(address, open + 1);
    this.counted.add(session.id);
    this.touch(session);
    this.countCommands(session);
    return null;
  }

  /** A mail transaction moved (MAIL, RCPT, DATA): the idle clock starts again. */
  touch(session: SMTPServerSession): void {
    clearTimeout(this.idle.get(session.id));
    const timer = setTimeout(() => this.refuse(session.id, `4.4.2 Idle for ${Math.round(this.opts.idleMs / 1000)} s without a mail transaction, closing`), this.opts.idleMs);
    timer.unref();
    this.idle.set(session.id, timer);
  }

  /** smtp-server's onClose: frees the session's place. */
  onClose(session: SMTPServerSession): void {
    clearTimeout(this.idle.get(session.id));
    this.idle.delete(session.id);
    if (!this.counted.delete(session.id)) return;
    const address = session.remoteAddress;
    const open = (this.perAddress.get(address) ?? 1) - 1;
    if (open > 0) this.perAddress.set(address, open);
    else this.perAddress.delete(address);
  }

  /** Sessions currently held, by client address (for status and tests). */
  sessionsByAddress(): Map<string, number> {
    return new Map(this.perAddress);
  }

  close(): void {
    for (const timer of this.idle.values()) clearTimeout(timer);
    this.idle.clear();
  }

  private countCommands(session: SMTPServerSession): void {
    const conn = this.connectionOf(session.id);
    const parser = conn?._parser;
    const next = parser?.oncommand;
    if (!conn || !parser || !next) return;
    let junk = 0;
    parser.oncommand = (command, callback) => {
      const verb = command.toString('latin1').trim().split(/\s+/, 1)[0]!.toUpperCase();
      if (!MAIL_COMMANDS.has(verb) && ++junk > this.opts.maxJunkCommands) {
        conn.send(421, `4.7.0 Too many commands that send no mail (${this.opts.maxJunkCommands}), closing`, false);
        conn.close();
        return;
      }
      next(command, callback);
    };
  }

  private refuse(sessionId: string, text: string): void {
    const conn = this.connectionOf(sessionId);
    if (!conn) return;
    conn.send(421, text, false);
    conn.close();
  }

  /** smtp-server keeps its open connections in `connections`; each carries its session's id. */
  private connectionOf(sessionId: string): Connection | undefined {
    const connections = (this.server as unknown as { connections?: Set<Connection> } | null)?.connections;
    if (!connections) return undefined;
    for (const c of connections) if (c.id === sessionId) return c;
    return undefined;
  }
}
