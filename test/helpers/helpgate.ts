import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { loadConfig, type Config } from '../../src/config/load.ts';
import type { Article } from '../../src/db/models/article.ts';
import type { InboxItem } from '../../src/db/models/inbox.ts';
import type { Ticket } from '../../src/db/models/ticket.ts';
import { createLogger } from '../../src/log/logger.ts';
import { startHelpgate, type Helpgate } from '../../src/main.ts';
import { CaptureSmtp } from './capture-smtp.ts';
import { startTestDatabase, type TestDatabase } from './database.ts';
import { until } from './wait.ts';
import { fixtureResolver } from './dns-fixture.ts';
import type { DnsResolver } from '../../src/mail/auth/dns.ts';

export const HELPDESK = 'help@helpdesk.localhost';
/** Members of the example configuration's units. */
export const FIRST_LINE = ['fl-agent@eucaim.example.org', 'fl-backup@eucaim.example.org'];
export const TST_AGENT = 'tst-agent@eucaim.example.org';

/** Environment for a test helpgate: port 0, quiet logs, short leases and retries. */
export function testEnv(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: '0',
    HTTP_PORT: '0',
    DEV_AAI_PORT: '0',
    // The open helpdesk of the ticket-loop tests; the identity tests set "hold".
    UNBOUND_SENDERS: 'accept',
    // Their mail comes over plain SMTP from 127.0.0.1 with any From: the open mode takes it at
    // its word. The sender-authentication tests run the default (flag).
    UNAUTHENTICATED_SENDERS: 'accept',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    MONGODB_TIMEOUT_MS: '2000',
    INGEST_LEASE_SECONDS: '5',
    OUTBOX_LEASE_SECONDS: '5',
    OUTBOX_BACKOFF_SECONDS: '0.2,0.2,0.2',
    // Tests send dozens of mails at once from one loopback address, which no MTA does; the
    // limit itself (default 20) is tested in smtp-limits.test.ts.
    SMTP_MAX_CLIENTS_PER_IP: '500',
    ...overrides,
  };
}

export interface TestHelpgate {
  hg: Helpgate;
  config: Config;
  db: TestDatabase;
  relay: CaptureSmtp;
  /** Sends a mail to helpgate over SMTP with nodemailer; resolves with the server's answer. */
  send(mail: Mail.Options): Promise<{ response: string; messageId: string }>;
  tickets(): Promise<Ticket[]>;
  ticket(number: number): Promise<Ticket | null>;
  articles(number: number): Promise<Article[]>;
  inbox(): Promise<InboxItem[]>;
  /** Waits until every stored message has been processed (or quarantined/ignored). */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartTestOptions {
  env?: Record<string, string | undefined>;
  /** Share a database between helpgates (e.g. two instances); default: a new one. */
  db?: TestDatabase;
  relay?: CaptureSmtp;
  ownDatabase?: boolean;
  /** helpgate's clock (default: the real one), e.g. to keep a test inside one rate-limit window. */
  now?: () => Date;
  /** Start the web portal and the dev LS AAI too (default: mail only). */
  portal?: boolean;
  /** DNS records for sender verification (default: none; tests never ask real DNS). */
  dns?: DnsResolver;
}

export function smtpClient(port: number) {
  return nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, pool: false });
}

/** A full helpgate in this process: real database, real SMTP on a free port, a capture relay. */
export async function startTestHelpgate(t: ExecutionContext | null, opts: StartTestOptions = {}): Promise<TestHelpgate> {
  const db = opts.db ?? (await startTestDatabase({ own: opts.ownDatabase ?? false }));
  const relay = opts.relay ?? (await new CaptureSmtp().listen());
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-data-'));
  const config = loadConfig(testEnv({ HELPGATE_DATA_DIR: dataDir, OUTBOUND_SMTP_URL: relay.url, ...opts.env }));
  const hg = await startHelpgate(config, { database: db.server, dbName: db.dbName, log: createLogger(config.logLevel), portal: opts.portal ?? false, dns: opts.dns ?? fixtureResolver({}), ...(opts.now ? { now: opts.now } : {}) });
  const client = smtpClient(hg.smtp.port);
  const { Ticket, Article, Inbox } = hg.store.models;
  const handle: TestHelpgate = {
    hg,
    config,
    db,
    relay,
    send: async (mail) => {
      const info = await client.sendMail(mail);
      return { response: info.response, messageId: info.messageId };
    },
    tickets: () => Ticket.find({}).sort({ number: 1 }).lean<Ticket[]>(),
    ticket: (number) => Ticket.findOne({ number }).lean<Ticket>(),
    articles: async (number) => Article.find({ ticketNumber: number }).sort({ createdAt: 1, _id: 1 }).lean<Article[]>(),
    inbox: () => Inbox.find({}).sort({ receivedAt: 1 }).lean<InboxItem[]>(),
    settle: async () => {
      await until(async () => (await Inbox.countDocuments({ state: 'pending' })) === 0, { what: 'the inbox to drain', timeoutMs: 60_000 });
    },
    stop: async () => {
      client.close();
      await hg.stop();
      if (!opts.relay) await relay.close();
      if (!opts.db) await db.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  t?.teardown(() => handle.stop());
  return handle;
}
