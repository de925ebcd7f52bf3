import { randomInt, randomUUID } from 'node:crypto';
import { ImapFlow, type FetchMessageObject } from 'imapflow';
import type { ImapSettings, MailboxConfig } from '../../config/mailboxes.ts';
import { EpochLease } from '../../db/coordination/index.ts';
import { IntakeStatusReporter, reporterId } from '../../db/intake-status.ts';
import type { ImapCheckpoint } from '../../db/models/intake.ts';
import type { Store } from '../../db/store.ts';
import { errorMessage } from '../../errors/errors.ts';
import { Naps } from '../../jobs/nap.ts';
import type { Logger } from '../../log/logger.ts';
import { storeInboxItem } from './inbox-writer.ts';
import { recordTooLarge } from './too-large.ts';
import { metrics } from '../../log/metrics.ts';

/** Bodies fetched by one FETCH together at most (one larger message is fetched alone). */
const BATCH_BYTES = 8 * 1024 * 1024;

export interface ImapReaderOptions {
  store: Store;
  log: Logger;
  mailbox: MailboxConfig;
  settings: ImapSettings;
  maxMessageSize: number;
  /** The envelope recipient of mail read from the mailbox (IMAP has no envelope). */
  recipient: string;
  /** Called after a message is stored, to wake the ingest worker. */
  onStored?: (id: string) => void;
  /** Called after a too-large message was recorded, to wake whoever tells its sender. */
  onNotice?: () => void;
}

class ImapTimeoutError extends Error {}
class ConnectionClosedError extends Error {}

function isAuthFailure(err: unknown): boolean {
  const e = err as { authenticationFailed?: boolean; serverResponseCode?: string };
  return e?.authenticationFailed === true || e?.serverResponseCode === 'AUTHENTICATIONFAILED';
}

function describe(err: unknown): string {
  const e = err as { responseText?: string; code?: string };
  const text = errorMessage(err);
  return e?.responseText && !text.includes(e.responseText) ? `${text}: ${e.responseText}` : e?.code && !text.includes(e.code) ? `${text} (${e.code})` : text;
}

/**
 * Reads one mailbox into the durable inbox, exactly once:
 *
 * - one reader per mailbox across all processes: it works only while it holds the mailbox's
 *   lease (db/coordination/epoch-lease.ts), renewed by a heartbeat;
 * - a message is stored (raw bytes, envelope) before it is moved, flagged or deleted, and the
 *   checkpoint (UIDVALIDITY, highest stored UID) is written after each message; so a crash
 *   stores at most the message in flight twice (the ingest drops the copy by Message-ID or
 *   content hash), and a message stored but not yet moved is only moved on the next run;
 * - a new UIDVALIDITY means the UIDs mean nothing any more: the folder is read again from the
 *   start, and the ingest's idempotency drops what was already stored;
 * - IDLE where the server offers it, and a poll every pollSeconds anyway;
 * - every IMAP command has a deadline; a lost connection is made again with exponential
 *   backoff and jitter; a refused login waits authRetrySeconds.
 */
export class ImapReader {
  private readonly owner = `imap-${reporterId}-${randomUUID().slice(0, 8)}`;
  private readonly lease: EpochLease;
  readonly status: IntakeStatusReporter;
  private running: Promise<void> | null = null;
  private stopping = false;
  private client: ImapFlow | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly naps = new Naps();
  private failures = 0;
  private lastUid = 0;
  private uidValidity: string | null = null;
  private readonly createdFolders = new Set<string>();

  constructor(private readonly opts: ImapReaderOptions) {
    const { store, mailbox, settings } = opts;
    this.lease = new EpochLease(store.models.ImapLease, store.models.ImapCheckpoint, `imap:${mailbox.name}`, this.owner, settings.leaseSeconds * 1000);
    this.status = new IntakeStatusReporter(store.models.IntakeStatus, `imap:${mailbox.name}`, 'imap', {
      onError: (message) => opts.log.warn({ mailbox: mailbox.name, err: message }, 'could not record the mailbox status'),
    });
  }

  private get log(): Logger {
    return this.opts.log;
  }

  private get mb(): MailboxConfig {
    return this.opts.mailbox;
  }

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    this.client?.close();
    await this.running;
    this.stopHeartbeat();
    if (this.lease.currentEpoch) {
      await this.status.stop({ state: 'stopped' });
      await this.lease.release().catch(() => {});
    }
  }

  private wake(): void {
    this.naps.wake();
  }

  /** Waits `ms` or until woken (stop, lease lost, new mail). */
  private sleep(ms: number): Promise<void> {
    return this.naps.sleep(ms);
  }

  private async run(): Promise<void> {
    const leaseMs = this.opts.settings.leaseSeconds * 1000;
    while (!this.stopping) {
      if (!this.lease.valid) {
        this.stopHeartbeat();
        let got = false;
        try {
          got = await this.lease.tryAcquire();
        } catch (err) {
          this.log.warn({ mailbox: this.mb.name, err: errorMessage(err) }, 'imap: could not check the mailbox lease');
        }
        if (!got) {
          // Someone else reads it (or the database is away): look again within a lease period.
          await this.sleep(leaseMs / 3 + randomInt(Math.max(1, Math.floor(leaseMs / 6))));
          continue;
        }
        this.log.info({ mailbox: this.mb.name, epoch: this.lease.currentEpoch }, 'imap: reading this mailbox');
        this.startHeartbeat(leaseMs);
        this.status.startHeartbeat();
        this.status.set({ state: 'connecting', detail: `${this.mb.user}@${this.mb.host}:${this.mb.port}/${this.mb.folder}` });
      }
      try {
        await this.session();
      } catch (err) {
        if (this.stopping) break;
        if (!this.lease.valid) continue;
        this.failures++;
        if (isAuthFailure(err)) {
          const message = `login refused for ${this.mb.user} at ${this.mb.host}: ${describe(err)}; next try in ${this.opts.settings.authRetrySeconds} s`;
          this.log.error({ mailbox: this.mb.name, attempts: this.failures }, `imap: ${message}`);
          this.status.set({ state: 'auth-failed', lastError: message, lastErrorAt: new Date(), failures: this.failures });
          await this.sleep(this.opts.settings.authRetrySeconds * 1000);
        } else {
          const ceiling = Math.min(this.opts.settings.retryMaxSeconds * 1000, 1000 * 2 ** Math.min(this.failures - 1, 20));
          const wait = Math.round(ceiling / 2 + randomInt(Math.max(1, Math.round(ceiling / 2))));
          const message = `${describe(err)}; reconnecting in ${(wait / 1000).toFixed(1)} s`;
          this.log.warn({ mailbox: this.mb.name, attempts: this.failures }, `imap: ${message}`);
          this.status.set({ state: 'reconnecting', lastError: message, lastErrorAt: new Date(), failures: this.failures });
          await this.sleep(wait);
        }
      }
    }
  }

  private startHeartbeat(leaseMs: number): void {
    this.stopHeartbeat();
    let busy = false;
    this.heartbeat = setInterval(async () => {
      if (busy) return;
      busy = true;
      try {
        const gone = await this.lease.renew();
        if (gone) this.lost(gone);
      } catch (err) {
        // The database is away: keep trying until the lease runs out, then stop reading.
        if (!this.lease.valid) this.lost(`the lease could not be renewed: ${errorMessage(err)}`);
      } finally {
        busy = false;
      }
    }, leaseMs / 3);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private lost(reason: string): void {
    this.log.warn({ mailbox: this.mb.name }, `imap: stopped reading: ${reason}`);
    this.stopHeartbeat();
    this.client?.close();
    this.wake();
  }

  /** Runs `promise` with the per-command deadline; on timeout the connection is dropped. */
  private timed<T>(client: ImapFlow, what: string, promise: Promise<T>): Promise<T> {
    const ms = this.opts.settings.commandTimeoutSeconds * 1000;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new ImapTimeoutError(`${what} got no answer within ${ms / 1000} s`));
        client.close();
      }, ms);
      promise.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  private connect(): ImapFlow {
    const { mailbox: mb, settings } = this.opts;
    const timeoutMs = settings.commandTimeoutSeconds * 1000;
    return new ImapFlow({
      host: mb.host,
      port: mb.port,
      secure: mb.tls === 'implicit',
      doSTARTTLS: mb.tls === 'starttls' ? true : mb.tls === 'none' ? false : undefined,
      auth: mb.accessToken ? { user: mb.user, accessToken: mb.accessToken } : { user: mb.user, pass: mb.password ?? '' },
      logger: false,
      disableAutoIdle: true,
      // Servers drop an IDLE after 30 minutes; renew it well before.
      maxIdleTime: 10 * 60_000,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: Math.max(timeoutMs, 5 * 60_000),
      clientInfo: { name: 'helpgate' },
    });
  }

  /** One connection: open the folder, drain it, wait for more; returns only when stopping or the lease is lost. */
  private async session(): Promise<void> {
    const client = this.connect();
    this.client = client;
    let closed = false;
    const closedError = new ConnectionClosedError('the IMAP connection was closed');
    client.on('error', (err: Error) => this.log.debug({ mailbox: this.mb.name, err: err.message }, 'imap connection error'));
    client.on('close', () => {
      closed = true;
      this.wake();
    });
    let newMail = false;
    client.on('exists', () => {
      newMail = true;
      this.wake();
    });
    try {
      // After a failure the state says what failed until a connection succeeds.
      if (!this.failures) this.status.set({ state: 'connecting' });
      await this.timed(client, 'connect', client.connect());
      const box = await this.timed(client, `SELECT ${this.mb.folder}`, client.mailboxOpen(this.mb.folder));
      await this.loadCheckpoint(String(box.uidValidity));
      const canIdle = this.mb.idle && client.capabilities.has('IDLE');
      while (!this.stopping && this.lease.valid) {
        newMail = false;
        this.status.set({ state: 'reading' });
        await this.drain(client);
        // Only a session that got through its folder counts as a success: a server that drops
        // every connection after SELECT must still back off.
        this.failures = 0;
        if (this.stopping || !this.lease.valid) break;
        if (closed) throw closedError;
        this.status.set({ state: canIdle ? 'idle' : 'polling', failures: 0, backlog: 0 });
        if (newMail) continue;
        if (canIdle) client.idle().catch(() => {});
        await this.sleep(this.mb.pollSeconds * 1000);
        if (closed && !this.stopping && this.lease.valid) throw closedError;
      }
    } finally {
      this.client = null;
      if (!closed) {
        await Promise.race([client.logout().catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
        client.close();
      }
    }
  }

  private async loadCheckpoint(uidValidity: string): Promise<void> {
    const cp = await this.opts.store.models.ImapCheckpoint.findById(this.mb.name).lean<ImapCheckpoint>();
    if (cp?.uidValidity === uidValidity && cp.folder === this.mb.folder) {
      this.uidValidity = uidValidity;
      this.lastUid = cp.lastUid;
      return;
    }
    if (cp?.uidValidity) {
      this.log.warn({ mailbox: this.mb.name, was: cp.uidValidity, now: uidValidity, folder: this.mb.folder }, 'imap: UIDVALIDITY changed: reading the folder again (stored messages are recognised and dropped)');
    }
    this.uidValidity = uidValidity;
    this.lastUid = 0;
    await this.saveCheckpoint();
  }

  private async saveCheckpoint(): Promise<void> {
    await this.opts.store.models.ImapCheckpoint.updateOne(
      { _id: this.mb.name },
      { $set: { folder: this.mb.folder, uidValidity: this.uidValidity, lastUid: this.lastUid, updatedAt: new Date() } },
      { upsert: true },
    );
  }

  /** Messages still to handle: everything left in the folder, or in \Seen mode what is new or unseen. */
  private async pending(client: ImapFlow): Promise<number[]> {
    const query = this.mb.afterStore === 'seen' ? { or: [{ uid: `${this.lastUid + 1}:*` }, { seen: false }] } : { deleted: false };
    const uids = (await this.timed(client, 'SEARCH', client.search(query, { uid: true }))) || [];
    return uids.sort((a, b) => a - b);
  }

  private async drain(client: ImapFlow): Promise<void> {
    for (;;) {
      if (this.stopping || !this.lease.valid) return;
      const uids = await this.pending(client);
      if (!uids.length) return;
      this.status.set({ backlog: uids.filter((u) => u > this.lastUid).length });
      const batch = uids.slice(0, this.opts.settings.batch);
      const sizes = await this.timed(client, 'FETCH sizes', client.fetchAll(batch, { uid: true, size: true, flags: true }, { uid: true }));
      sizes.sort((a, b) => a.uid - b.uid);
      const tooLarge = (m: FetchMessageObject) => (m.size ?? 0) > this.opts.maxMessageSize;
      // Already stored (a crash or a lost connection came before the move or flag): only finish
      // that. In \Seen mode, "UID n:*" also answers the last message when n is past it: skip
      // what is flagged already.
      const done = sizes.filter((m) => m.uid <= this.lastUid && !(this.mb.afterStore === 'seen' && m.flags?.has('\\Seen') && !tooLarge(m)));
      const fresh = sizes.filter((m) => m.uid > this.lastUid);
      if (!done.length && !fresh.length) return;
      if (done.some((m) => !tooLarge(m))) await this.afterStore(client, done.filter((m) => !tooLarge(m)).map((m) => m.uid));
      if (done.some(tooLarge)) await this.moveTooLarge(client, done.filter(tooLarge).map((m) => m.uid));
      if (!fresh.length) continue;
      // Groups of bodies fetched together, bounded in bytes; too-large ones alone.
      let group: FetchMessageObject[] = [];
      let groupBytes = 0;
      for (const m of fresh) {
        const size = m.size ?? 0;
        if (size > this.opts.maxMessageSize || (group.length && groupBytes + size > BATCH_BYTES)) {
          if (!(await this.storeGroup(client, group))) return;
          group = [];
          groupBytes = 0;
        }
        if (size > this.opts.maxMessageSize) {
          if (!(await this.storeTooLarge(client, m.uid, size))) return;
          continue;
        }
        group.push(m);
        groupBytes += size;
      }
      if (!(await this.storeGroup(client, group))) return;
    }
  }

  /** Fetches and stores a group of messages in UID order, then moves/flags/deletes them. False when the lease is gone. */
  private async storeGroup(client: ImapFlow, group: FetchMessageObject[]): Promise<boolean> {
    if (!group.length) return true;
    const messages = await this.timed(client, 'FETCH bodies', client.fetchAll(group.map((m) => m.uid), { uid: true, source: true }, { uid: true }));
    messages.sort((a, b) => a.uid - b.uid);
    const stored: number[] = [];
    let complete = true;
    for (const m of messages) {
      if (this.stopping || !this.lease.valid) {
        complete = false;
        break;
      }
      if (!m.source || m.uid <= this.lastUid) continue;
      const item = await storeInboxItem(this.opts.store, 'imap', m.source, {
        mailFrom: null,
        rcptTo: [this.opts.recipient],
        clientIp: null,
        helo: this.owner,
        mailbox: this.mb.name,
      });
      this.lastUid = m.uid;
      await this.saveCheckpoint();
      stored.push(m.uid);
      this.status.messageStored();
      this.log.info({ mailbox: this.mb.name, uid: m.uid, inboxId: String(item.id), size: m.source.length }, 'message stored');
      metrics.intakeReplies.inc({ channel: 'imap', code: '250' });
      metrics.messageSize.observe({ channel: 'imap' }, m.source.length);
      this.opts.onStored?.(String(item.id));
    }
    if (stored.length) await this.afterStore(client, stored);
    return complete;
  }

  private async storeTooLarge(client: ImapFlow, uid: number, size: number): Promise<boolean> {
    if (this.stopping || !this.lease.valid) return false;
    const head = await this.timed(client, 'FETCH headers', client.fetchOne(String(uid), { uid: true, headers: true }, { uid: true }));
    const headers = head && head.headers ? head.headers : Buffer.from('');
    const folder = this.mb.tooLargeFolder;
    const id = await recordTooLarge(this.opts.store, headers, { mailFrom: null, rcptTo: [this.opts.recipient], helo: this.owner }, { size, limit: this.opts.maxMessageSize, mailbox: this.mb.name, folder });
    this.lastUid = uid;
    await this.saveCheckpoint();
    this.log.warn({ mailbox: this.mb.name, uid, size, limit: this.opts.maxMessageSize, inboxId: String(id) }, `imap: message too large, moved to "${folder}"`);
    metrics.intakeReplies.inc({ channel: 'imap', code: '552' });
    this.opts.onNotice?.();
    await this.moveTooLarge(client, [uid]);
    return true;
  }

  private async moveTooLarge(client: ImapFlow, uids: number[]): Promise<void> {
    await this.ensureFolder(client, this.mb.tooLargeFolder);
    await this.timed(client, 'MOVE', client.messageMove(uids, this.mb.tooLargeFolder, { uid: true }));
  }

  private async ensureFolder(client: ImapFlow, folder: string): Promise<void> {
    if (this.createdFolders.has(folder)) return;
    await this.timed(client, `CREATE ${folder}`, client.mailboxCreate(folder));
    this.createdFolders.add(folder);
  }

  /** What happens to a message once stored: only ever called with stored UIDs. */
  private async afterStore(client: ImapFlow, uids: number[]): Promise<void> {
    switch (this.mb.afterStore) {
      case 'move':
        await this.ensureFolder(client, this.mb.moveTo);
        await this.timed(client, 'MOVE', client.messageMove(uids, this.mb.moveTo, { uid: true }));
        break;
      case 'seen':
        await this.timed(client, 'STORE \\Seen', client.messageFlagsAdd(uids, ['\\Seen'], { uid: true }));
        break;
      case 'delete':
        await this.timed(client, 'DELETE', client.messageDelete(uids, { uid: true }));
        break;
    }
  }
}

/** One reader per configured mailbox. */
export function startImapReaders(opts: Omit<ImapReaderOptions, 'mailbox'> & { mailboxes: readonly MailboxConfig[] }): ImapReader[] {
  return opts.mailboxes.map((mailbox) => {
    const reader = new ImapReader({ ...opts, mailbox, log: opts.log.child({ component: 'imap', mailbox: mailbox.name }) });
    reader.start();
    return reader;
  });
}
