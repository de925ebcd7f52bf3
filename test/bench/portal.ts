/**
 * `npm run bench:portal`: how fast the portal answers with a large database.
 *
 * Seeds 100,000 tickets (--tickets N), each with its opening message, of which one person owns
 * 1,000 (--own N), the rest owned by 5,000 others; one of the person's tickets has 50 articles,
 * written last. Seeding goes straight to the collections in batches (insertMany), not through
 * the domain, so that a large history takes minutes, not hours. Then, against helpgate's real
 * portal over HTTP with a real session, it measures the ticket list, a search and the ticket
 * page with 50 articles: a warm-up, then a fixed number of requests each (--requests N, default
 * 200), one at a time, within a time budget per page (--budget-seconds, default 180, but at
 * least 5 requests), and prints p50 / p95 / p99 with the database engine. The target is
 * p95 < 300 ms; it prints whether it was met and never fails on a figure.
 *
 * The engine is chosen as for bench:ingest (engines.ts): MONGODB_URI (a database of its own,
 * dropped afterwards), else HELPGATE_ENGINE, else the embedded default.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Types } from 'mongoose';
import { loadConfig } from '../../src/config/load.ts';
import { idFor } from '../../src/db/coordination/index.ts';
import { currentAup } from '../../src/domain/identity/users.ts';
import { newSessionId, saveSession } from '../../src/domain/portal/sessions.ts';
import { createLogger } from '../../src/log/logger.ts';
import { startHelpgate, type Helpgate } from '../../src/main.ts';
import { EngineChoiceError, enginesFromEnv, startEngine, type BenchDatabase, type EngineChoice } from './engines.ts';
import { nowMs, percentile } from './smtp-load.ts';

const TARGET_P95_MS = 300;
const MIN_MEASURED = 5;

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : undefined;
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench:portal: --${name} must be a positive integer, got "${raw}"\n`);
    process.exit(2);
  }
  return n;
}

const SUB = `${'ab'.repeat(20)}@lifescience-ri.eu`;
const WORDS = ['upload', 'dicom', 'catalogue', 'search', 'dataset', 'access', 'node', 'etl', 'dashboard', 'token', 'series', 'timeout', 'error', 'federated', 'query'];
const subjectFor = (n: number) => `${WORDS[n % WORDS.length]} ${WORDS[(n * 7) % WORDS.length]} problem ${n}`;

/**
 * Writes the history straight into the collections the portal reads. One batch is in flight
 * while the next is built, its collections written in parallel: the engine, not this loop,
 * sets the pace. Returns the ticket of the 50-article page and how many documents were written.
 */
async function seed(hg: Helpgate, total: number, own: number): Promise<{ pageTicket: number; documents: number }> {
  const { Ticket, TicketList, Article, User } = hg.store.models;
  const now = Date.now();
  const lists = new Map<string, Record<string, unknown>>();
  const batch = 2000;
  let documents = 0;
  let inFlight: Promise<unknown> = Promise.resolve();
  for (let start = 0; start < total; start += batch) {
    const tickets = [];
    const firstArticles = [];
    for (let i = start; i < Math.min(total, start + batch); i++) {
      const number = 100001 + i;
      const ownerSub = i < own ? SUB : `${String(i % 5000).padStart(40, '0')}@lifescience-ri.eu`;
      const _id = idFor('ticket', `bench:${number}`);
      const at = new Date(now - (total - i) * 60_000);
      const subject = subjectFor(number);
      tickets.push({ _id, number, subject, requester: { address: `user${i % 5000}@example.org`, name: '' }, participants: [], su: 'first-line', state: i % 3 ? 'open' : 'solved', priority: 'less urgent', category: 'other', channel: 'mail', ownerSub, originKey: `bench:${number}`, createdAt: at, updatedAt: at });
      // Every ticket has its opening message, so the ticket page reads from a full collection.
      const articleId = new Types.ObjectId();
      firstArticles.push({ _id: articleId, ticketId: _id, ticketNumber: number, key: `bench:${number}:0`, direction: 'in', authorRole: 'requester', channel: 'mail', from: { address: `user${i % 5000}@example.org`, name: '' }, to: [], cc: [], subject, text: `Opening message of ticket ${number}: the upload of the series fails.`, html: null, attachments: [], references: [], createdAt: at, updatedAt: at });
      const list = lists.get(ownerSub) ?? {};
      list[String(number)] = { number, subject, state: i % 3 ? 'open' : 'solved', su: 'first-line', priority: 'less urgent', createdAt: at, updatedAt: at, text: `${subject} the upload of series ${number} fails with a timeout`.toLowerCase() };
      lists.set(ownerSub, list);
    }
    await inFlight;
    if (start % 20_000 === 0 && start > 0) process.stdout.write(`  seeded ${start}/${total} tickets\n`);
    inFlight = Promise.all([
      Ticket.collection.insertMany(tickets as never[], { ordered: false }),
      Article.collection.insertMany(firstArticles as never[], { ordered: false }),
    ]);
    documents += tickets.length + firstArticles.length;
  }
  await inFlight;
  const listDocs = [...lists].map(([_id, tickets]) => ({ _id, tickets }));
  for (let i = 0; i < listDocs.length; i += 500) await TicketList.collection.insertMany(listDocs.slice(i, i + 500) as never[], { ordered: false });
  documents += listDocs.length;
  const pageTicket = 100001 + own - 1;
  const ticketId = idFor('ticket', `bench:${pageTicket}`);
  const articles = Array.from({ length: 49 }, (_, j) => j + 1).map((k) => ({
    _id: new Types.ObjectId(),
    ticketId,
    ticketNumber: pageTicket,
    key: `bench:${pageTicket}:${k}`,
    direction: 'in',
    authorRole: k % 2 ? 'agent' : 'requester',
    channel: 'mail',
    from: { address: k % 2 ? 'fl-agent@eucaim.example.org' : 'researcher@university.example', name: '' },
    to: [],
    cc: [],
    subject: subjectFor(pageTicket),
    text: `Message ${k}: ${'the upload of the DICOM series stops with a timeout. '.repeat(20)}`,
    html: k % 5 === 0 ? `<p>Message ${k} <b>in HTML</b> with <a href="https://example.org">a link</a> and <img src="https://example.org/x.png" alt="remote"></p>` : null,
    attachments: [],
    references: [],
    createdAt: new Date(now - (50 - k) * 60_000),
    updatedAt: new Date(now - (50 - k) * 60_000),
  }));
  await Article.collection.insertMany(articles as never[]);
  documents += articles.length;
  const aup = currentAup(hg.ctx);
  await User.collection.insertOne({ _id: SUB, name: 'Bench Researcher', givenName: 'Bench', familyName: 'Researcher', email: 'researcher@university.example', emailVerified: true, entitlements: [hg.config.requiredEntitlement ?? ''], affiliations: [], homeOrganization: null, addresses: [{ address: 'researcher@university.example', boundAt: new Date(), via: 'verified-claim' }], consents: [{ version: aup.version, at: new Date(), ip: '127.0.0.1' }], lastSignInAt: new Date(), createdAt: new Date(), updatedAt: new Date() } as never);
  return { pageTicket, documents };
}

interface Measured {
  times: number[];
  failures: string[];
  /** Requests not made because the case ran out of its time budget. */
  skipped: number;
}

/**
 * Warm-up, then `requests` requests one at a time. The warm-up gives up after a tenth of
 * `budgetMs`; the measured requests stop at the end of the budget, but never before
 * `MIN_MEASURED` of them, so a slow page still gets figures instead of none.
 */
async function measure(url: string, cookie: string, warmup: number, requests: number, expect: string, budgetMs: number): Promise<Measured> {
  const out: Measured = { times: [], failures: [], skipped: 0 };
  const started = nowMs();
  const one = async (record: boolean) => {
    const t0 = nowMs();
    try {
      const res = await fetch(url, { headers: { cookie }, redirect: 'manual', signal: AbortSignal.timeout(60_000) });
      const body = await res.text();
      if (res.status !== 200 || !body.includes(expect)) throw new Error(`answered ${res.status} without "${expect}"`);
      if (record) out.times.push(nowMs() - t0);
    } catch (err) {
      if (record) out.failures.push((err as Error).message);
    }
  };
  for (let i = 0; i < warmup && (i === 0 || nowMs() - started < budgetMs / 10); i++) await one(false);
  for (let i = 0; i < requests; i++) {
    if (i >= MIN_MEASURED && nowMs() - started > budgetMs) {
      out.skipped = requests - i;
      break;
    }
    await one(true);
  }
  return out;
}

async function main(): Promise<void> {
  const total = option('tickets', 100_000);
  const own = Math.min(total, option('own', 1000));
  const requests = option('requests', 200);
  const budgetSeconds = option('budget-seconds', 180);
  let choice: EngineChoice;
  try {
    choice = enginesFromEnv()[0]!;
  } catch (err) {
    if (!(err instanceof EngineChoiceError)) throw err;
    process.stderr.write(`bench:portal: ${err.message}\n`);
    process.exit(2);
  }
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-bench-portal-'));
  // Searchable by others: a root run starts PostgreSQL as `nobody`, which must reach its cluster in here.
  chmodSync(workDir, 0o711);
  const config = loadConfig({
    HELPGATE_DATA_DIR: path.join(workDir, 'data'),
    HELPGATE_TOOLS_DIR: process.env.HELPGATE_TOOLS_DIR,
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: '0',
    HTTP_PORT: '0',
    DEV_AAI_PORT: '0',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'error',
  });
  let db: BenchDatabase | null = null;
  let hg: Helpgate | null = null;
  const cleanup = async () => {
    await hg?.stop();
    await db?.stop();
    rmSync(workDir, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: cleaning up…\n`);
      void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
  try {
    process.stdout.write(`helpgate portal benchmark: ${total} tickets, ${own} of them one person's, ${requests} requests per page, node ${process.version}, ${os.cpus().length} CPUs\n`);
    db = await startEngine(choice, path.join(workDir, 'database'), config.toolsDir);
    process.stdout.write(`  database: [${db.name}] ${db.label}\n`);
    hg = await startHelpgate(config, { log: createLogger(config.logLevel), database: db.server, dbName: db.dbName('portal') });
    const seeded = nowMs();
    const { pageTicket, documents } = await seed(hg, total, own);
    const seconds = (nowMs() - seeded) / 1000;
    process.stdout.write(`  seeded ${documents} documents in ${seconds.toFixed(1)} s (${(documents / seconds).toFixed(0)} documents/s)\n`);
    const sid = newSessionId();
    await saveSession(hg.ctx, sid, { sub: SUB, consented: currentAup(hg.ctx).version }, 3600_000);
    const cookie = `hg_session=${sid}`;
    const base = hg.portal!.url;
    const cases = [
      ['ticket list (page 1 of my 1,000)', `${base}/`, 'My tickets'],
      ['search "timeout" in number, subject, text', `${base}/?q=timeout`, 'ticket'],
      ['ticket page with 50 articles', `${base}/tickets/${pageTicket}`, `CIE#${pageTicket}`],
    ] as const;
    const lines = ['', 'results', `  database engine   [${db.name}] ${db.label}, ${documents} documents`];
    for (const [name, url, expect] of cases) {
      const m = await measure(url, cookie, 20, requests, expect, budgetSeconds * 1000);
      const p95 = m.times.length ? percentile(m.times, 95) : Number.POSITIVE_INFINITY;
      const fmt = (p: number) => (m.times.length ? percentile(m.times, p).toFixed(1) : 'n/a').padStart(7);
      const verdict = m.failures.length ? 'NOT MET (failed requests)' : p95 < TARGET_P95_MS ? 'MET' : `NOT MET by ${(p95 - TARGET_P95_MS).toFixed(0)} ms (${(p95 / TARGET_P95_MS).toFixed(1)}×)`;
      lines.push(
        `  ${name.padEnd(44)} p50 ${fmt(50)} ms   p95 ${fmt(95)} ms   p99 ${fmt(99)} ms   (${m.times.length} ok` +
          `${m.failures.length ? `, ${m.failures.length} failed: ${[...new Set(m.failures)].slice(0, 2).join('; ')}` : ''}` +
          `${m.skipped ? `, ${m.skipped} not made within the ${budgetSeconds} s budget` : ''})   target p95 < ${TARGET_P95_MS} ms: ${verdict}`,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench:portal failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
