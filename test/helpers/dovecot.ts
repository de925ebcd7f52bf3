import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { canConnect, endsWithThisProcess, freePort } from '../../src/db/embedded.ts';
import { until } from './wait.ts';

export interface DovecotUser {
  name: string;
  password: string;
}

/** What a folder holds: UID, flags and Message-ID of each message. */
export interface FolderMessage {
  uid: number;
  flags: string[];
  messageId: string | null;
}

function nobody(): { uid: number; gid: number } {
  const id = (flag: string, name: string) => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
  return { uid: id('-u', 'nobody'), gid: Number(spawnSync('getent', ['group', 'nogroup'], { encoding: 'utf8' }).stdout.split(':')[2] ?? id('-g', 'nobody')) };
}

/**
 * A real Dovecot (Debian's dovecot-imapd) on a loopback port with a throwaway configuration:
 * plain-text logins from a passwd-file, Maildirs in a temporary folder owned by nobody (Dovecot
 * will not deliver as root). Started with `dovecot -F` as a child of the test; stop() and
 * start() again keep the port and the mail, as a server restart does.
 */
export class Dovecot {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-dovecot-'));
  port = 0;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private readonly users = new Map<string, string>();
  /** Logins of the test's own clients, by user (Dovecot's log counts them with helpgate's). */
  private readonly ownLogins = new Map<string, number>();

  constructor(users: DovecotUser[]) {
    for (const u of users) this.users.set(u.name, u.password);
  }

  get logFile(): string {
    return path.join(this.dir, 'dovecot.log');
  }

  private writeConfig(): string {
    // Dovecot's auth and mail processes run as other users: they must reach the files.
    chmodSync(this.dir, 0o755);
    const mail = path.join(this.dir, 'mail');
    mkdirSync(mail, { recursive: true });
    const { uid, gid } = nobody();
    chownSync(mail, uid, gid);
    writeFileSync(path.join(this.dir, 'passwd'), [...this.users].map(([name, pass]) => `${name}:{PLAIN}${pass}::::::\n`).join(''));
    const conf = path.join(this.dir, 'dovecot.conf');
    writeFileSync(
      conf,
      `protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
base_dir = ${this.dir}/run
state_dir = ${this.dir}/state
log_path = ${this.logFile}
mail_uid = nobody
mail_gid = nogroup
mail_location = maildir:${mail}/%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${this.dir}/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=${mail}/%u
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = ${this.port}
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
protocol imap {
  mail_max_userip_connections = 200
}
`,
    );
    return conf;
  }

  /** Starts Dovecot (again, on the same port) and resolves once it accepts connections. */
  async start(): Promise<this> {
    if (this.child) throw new Error('dovecot is already running');
    this.port ||= await freePort();
    const conf = this.writeConfig();
    const child = spawn('dovecot', ['-c', conf, '-F'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    this.child = child;
    // A test process that dies of an uncaught error must not leave its Dovecot running.
    endsWithThisProcess(child);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => {
      if (this.child === child) this.child = null;
    });
    await until(
      async () => {
        if (!this.child) throw new Error(`dovecot exited: ${output}`);
        return canConnect(this.port);
      },
      { what: `dovecot listening on ${this.port}`, timeoutMs: 20_000 },
    );
    return this;
  }

  /** Stops the server (its IMAP sessions end with it) and waits until it is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    await this.exited;
    this.child = null;
  }

  async cleanup(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** An IMAP session as the given user (the test's own client, not helpgate's). */
  async client(user: string): Promise<ImapFlow> {
    const client = new ImapFlow({ host: '127.0.0.1', port: this.port, secure: false, doSTARTTLS: false, auth: { user, pass: this.users.get(user)! }, logger: false, disableAutoIdle: true });
    client.on('error', () => {});
    this.ownLogins.set(user, (this.ownLogins.get(user) ?? 0) + 1);
    await client.connect();
    return client;
  }

  async withClient<T>(user: string, fn: (c: ImapFlow) => Promise<T>): Promise<T> {
    const c = await this.client(user);
    try {
      return await fn(c);
    } finally {
      await c.logout().catch(() => c.close());
    }
  }

  /** Appends the messages to the folder (created if missing), in order. */
  async append(user: string, folder: string, messages: (string | Buffer)[]): Promise<void> {
    await this.withClient(user, async (c) => {
      await c.mailboxCreate(folder).catch(() => {});
      for (const m of messages) {
        // Right after the folder was recreated, Dovecot may refuse once with "Mailbox was
        // deleted under us" while another session still has the old one: nothing was
        // appended, so the APPEND is repeated.
        for (let attempt = 1; ; attempt++) {
          try {
            await c.append(folder, m);
            break;
          } catch (err) {
            if (attempt >= 10 || !/deleted under us/i.test(String((err as { responseText?: string }).responseText ?? ''))) throw err;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      }
    });
  }

  /** The messages of a folder (empty when it does not exist). */
  async list(user: string, folder: string): Promise<FolderMessage[]> {
    return this.withClient(user, async (c) => {
      const boxes = await c.list();
      if (!boxes.some((b) => b.path === folder)) return [];
      const box = await c.mailboxOpen(folder, { readOnly: true });
      if (!box.exists) return [];
      const out: FolderMessage[] = [];
      for await (const m of c.fetch('1:*', { uid: true, flags: true, envelope: true })) {
        out.push({ uid: m.uid, flags: [...(m.flags ?? [])], messageId: m.envelope?.messageId ?? null });
      }
      return out;
    });
  }

  /** Deletes the folder and creates it again: the same name, a new UIDVALIDITY. */
  async recreate(user: string, folder: string): Promise<void> {
    await this.withClient(user, async (c) => {
      await c.mailboxDelete(folder);
      await c.mailboxCreate(folder);
    });
  }

  /** Lines of Dovecot's log matching `pattern`. */
  logLines(pattern: RegExp): string[] {
    let text = '';
    try {
      text = readFileSync(this.logFile, 'utf8');
    } catch {
      return [];
    }
    return text.split('\n').filter((l) => pattern.test(l));
  }

  /** Successful logins of `user` by others than this helper's own clients (i.e. helpgate's), as Dovecot logged them. */
  logins(user: string): number {
    return this.logLines(new RegExp(`imap-login: Info: Login: user=<${user}>`)).length - (this.ownLogins.get(user) ?? 0);
  }

  /** Refused password checks of `user`. */
  refusedLogins(user: string): number {
    return this.logLines(new RegExp(`passwd-file\\(${user},.*Password mismatch`)).length;
  }
}
