/**
 * `npm run bench:ingest [-- --count N]` (or BENCH_COUNT=N): how fast helpgate takes in mail,
 * compared with the ceiling of an SMTP server that only parses.
 *
 *   (a) ceiling: a bare smtp-server that parses each message with mailparser, then answers 250;
 *   (b) helpgate: the whole pipeline in this process (startHelpgate with its own embedded
 *       database in a temporary folder, outbound mail to a local capture relay), timed until
 *       every message is an article of a ticket and every acknowledgement and notification
 *       is queued.
 *
 * Both get the same corpus over 5 parallel SMTP connections. It prints figures and whether
 * the target ratio was met; it never fails on a figure. Temporary folders and the database
 * server are removed at the end, also on Ctrl-C.
 *
 * Options: --count N (BENCH_COUNT, default 2000); --deadline-minutes M (BENCH_DEADLINE_MINUTES,
 * default 30): stop waiting for the pipeline then and print figures for the work done;
 * --profile (BENCH_PROFILE=1): count and time helpgate's database commands by kind.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/log/logger.ts';
import { parseMessage } from '../../src/mail/parse/parse.ts';
import { startHelpgate, type Helpgate } from '../../src/main.ts';
import { buildCorpus, type BenchMail } from './corpus.ts';
import { DbProfile } from './db-profile.ts';
import { deliverAll, nowMs, percentile, type LoadResult } from './smtp-load.ts';

const TARGET_RATIO = 0.6;
const CONNECTIONS = 5;
const HELPDESK = 'help@helpdesk.localhost';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

function countFromArgs(): number {
  const i = process.argv.indexOf('--count');
  const raw = i >= 0 ? process.argv[i + 1] : (process.argv.find((a) => a.startsWith('--count='))?.slice(8) ?? process.env.BENCH_COUNT);
  const n = raw === undefined ? 2000 : Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench:ingest: --count / BENCH_COUNT must be a positive integer, got "${raw}"\n`);
    process.exit(2);
  }
  return n;
}

/** An SMTP server that accepts and drops: either the ceiling (parse = true) or the outbound relay. */
async function sinkServer(parse: boolean): Promise<{ server: SMTPServer; port: number; received: () => number; close: () => Promise<void> }> {
  let received = 0;
  let closed: Promise<void> | undefined;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    hideSTARTTLS: true,
    logger: false,
    size: 25 * 1024 * 1024,
    maxClients: 200,
    onData: (stream, _session, cb) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.once('end', () => {
        const raw = Buffer.concat(chunks);
        const done = parse ? parseMessage(raw).then(() => undefined) : Promise.resolve();
        done.then(
          () => {
            received++;
            cb(null, 'Ok');
          },
          (err: Error) => cb(err),
        );
      });
    },
  });
  server.on('error', () => {}); // a client dropping its connection is not the benchmark's failure
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    server,
    port: (server.server.address() as AddressInfo).port,
    received: () => received,
    close: () => (closed ??= new Promise((resolve) => server.close(() => resolve()))),
  };
}

const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : 'n/a');
const rate = (n: number, msSpan: number) => n / (msSpan / 1000);

function dataToReply(load: LoadResult): number[] {
  return load.deliveries.map((d) => d.repliedAt - d.endOfDataAt);
}

function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Peak resident memory of our child processes (the embedded database), from /proc where there is one. */
function childPeakRss(): { name: string; mb: number }[] {
  const out: { name: string; mb: number }[] = [];
  try {
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
        if (!m || Number(m[2]) !== process.pid) continue;
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (hwm) out.push({ name: m[1]!, mb: Number(hwm[1]) / 1024 });
      } catch {
        // the process ended meanwhile
      }
    }
  } catch {
    // no /proc here
  }
  return out;
}

/**
 * What the database itself can do, measured on helpgate's own connection after its run: 400
 * single-document inserts with helpgate's write concern (majority, journaled), 8 at a time, into
 * a scratch collection that is dropped afterwards. Every mail costs helpgate a number of such
 * writes, so this bounds the pipeline whatever the code does around them.
 */
async function durableWriteCeiling(hg: Helpgate): Promise<number> {
  const scratch = hg.store.conn.db!.collection('bench_write_ceiling');
  const total = 400;
  let next = 0;
  const started = nowMs();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < total) {
        const n = next++;
        await scratch.insertOne({ n, at: new Date() }, { writeConcern: { w: 'majority', journal: true } });
      }
    }),
  );
  const rate = (total * 1000) / (nowMs() - started);
  await scratch.drop().catch(() => {});
  return rate;
}

async function engineDescription(hg: Helpgate): Promise<string> {
  try {
    const info = (await hg.store.conn.db!.admin().command({ buildInfo: 1 })) as { version?: string; ferretdbVersion?: string };
    if (hg.database.engine === 'postgresql' || hg.database.engine === 'sqlite') return `${hg.database.label} (reports MongoDB ${info.version ?? '?'})`;
    if (info.ferretdbVersion) return `FerretDB ${info.ferretdbVersion} (reports MongoDB ${info.version ?? '?'})`;
    return `${hg.database.engine === 'external' ? 'MongoDB (external)' : 'mongod'} ${info.version ?? '?'}`;
  } catch {
    return hg.database.engine;
  }
}

interface PipelineTimes {
  /** false when the deadline came first: the figures are for what was done by then. */
  finished: boolean;
  articleLatency: number[];
  ackLatency: number[];
  completedAt: number;
  tickets: number;
  articles: number;
  threadedReplies: number;
  replies: number;
  quarantined: number;
  acks: number;
  notifications: number;
}

/** Waits until every message is an article and every automatic mail is queued; then reads the times. */
/**
 * Counts the ingest worker's finished steps. Every count query is a full scan on FerretDB and
 * would slow what is measured, so progress comes from here, and the database is asked only
 * once this count says all could be done.
 */
function countIngestSteps(hg: Helpgate): () => number {
  let steps = 0;
  const step = hg.ingest.step.bind(hg.ingest);
  hg.ingest.step = async () => {
    const worked = await step();
    if (worked) steps++;
    return worked;
  };
  return () => steps;
}

async function waitForPipeline(hg: Helpgate, mails: BenchMail[], load: LoadResult, ingestSteps: () => number, deadline: number): Promise<PipelineTimes> {
  const { Inbox, Article, Outbox, Ticket } = hg.store.models;
  const n = mails.length;
  let lastReport = Date.now();
  let lastCheck = 0;
  let finished = false;
  while (Date.now() < deadline) {
    const mayBeDone = ingestSteps() >= n && Date.now() - lastCheck > 3000;
    if (mayBeDone) lastCheck = Date.now();
    if (mayBeDone && (await Inbox.countDocuments({ state: 'pending' })) === 0) {
      const [articles, tickets, acks, notifications] = await Promise.all([
        Article.countDocuments({ direction: 'in' }),
        Ticket.countDocuments({}),
        Outbox.countDocuments({ kind: 'ack' }),
        Outbox.countDocuments({ kind: { $in: ['notify-new', 'notify-followup'] } }),
      ]);
      const quarantined = await Inbox.countDocuments({ state: { $ne: 'done' } });
      if (articles + quarantined >= n && acks >= tickets && notifications >= 2 * articles) {
        finished = true;
        break;
      }
    }
    if (Date.now() - lastReport > 60_000) {
      lastReport = Date.now();
      process.stdout.write(`  … ${Math.min(ingestSteps(), n)}/${n} ingested (${((nowMs() - load.startedAt) / 1000).toFixed(0)} s)\n`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  if (!finished) {
    process.stdout.write(`  deadline reached: stopping the workers, figures below are for the work done so far\n`);
    // Stop the workers so that what is read next is one consistent picture.
    await Promise.all([hg.ingest.stop(), hg.outbox.stop()]);
  }
  const repliedAt = new Map(mails.map((m) => [m.messageId, load.deliveries[m.index]!.repliedAt]));
  const articles = await Article.find({ direction: 'in' }, { messageId: 1, createdAt: 1, ticketId: 1 }).lean<{ _id: unknown; messageId: string; createdAt: Date; ticketId: unknown }[]>();
  const articleLatency = articles.map((a) => a.createdAt.getTime() - repliedAt.get(a.messageId)!);
  const stoppedAt = nowMs();
  const byArticle = new Map(articles.map((a) => [String(a._id), a]));
  const queued = await Outbox.find({}, { kind: 1, articleId: 1, createdAt: 1 }).lean<{ kind: string; articleId: unknown; createdAt: Date }[]>();
  const ackLatency = queued
    .filter((o) => o.kind === 'ack' && byArticle.has(String(o.articleId)))
    .map((o) => o.createdAt.getTime() - repliedAt.get(byArticle.get(String(o.articleId))!.messageId)!);
  const completedAt = finished ? Math.max(...articles.map((a) => a.createdAt.getTime()), ...queued.map((o) => o.createdAt.getTime())) : stoppedAt;
  // A reply is threaded when its article joined the ticket of the mail it answers.
  const ticketOf = new Map(articles.map((a) => [a.messageId, String(a.ticketId)]));
  // Only replies that are stored count (on a run stopped at its deadline, some are not yet).
  const replies = mails.filter((m) => m.parent !== null && ticketOf.has(m.messageId));
  const threadedReplies = replies.filter((m) => ticketOf.get(m.messageId) === ticketOf.get(mails[m.parent!]!.messageId)).length;
  return {
    finished,
    articleLatency,
    ackLatency,
    completedAt,
    tickets: await Ticket.countDocuments({}),
    articles: articles.length,
    threadedReplies,
    replies: replies.length,
    quarantined: await Inbox.countDocuments({ state: { $ne: 'done' } }),
    acks: queued.filter((o) => o.kind === 'ack').length,
    notifications: queued.filter((o) => o.kind.startsWith('notify')).length,
  };
}

async function main(): Promise<void> {
  const count = countFromArgs();
  const deadlineMinutes = Number(flag('deadline-minutes') ?? process.env.BENCH_DEADLINE_MINUTES ?? 30);
  const profiling = process.argv.includes('--profile') || process.env.BENCH_PROFILE === '1';
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-bench-'));
  // Searchable by others: a root run starts PostgreSQL as `nobody`, which must reach its cluster in here.
  chmodSync(workDir, 0o711);
  const cleanups: (() => Promise<void>)[] = [async () => rmSync(workDir, { recursive: true, force: true })];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch((err) => process.stderr.write(`cleanup: ${String(err)}\n`));
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: cleaning up…\n`);
      void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }

  try {
    process.stdout.write(`helpgate ingest benchmark: ${count} mails, ${CONNECTIONS} SMTP connections, node ${process.version}, ${os.cpus().length} CPUs\n`);
    const built = nowMs();
    const mails = await buildCorpus({ count, helpdesk: HELPDESK });
    const charsets = new Map<string, number>();
    for (const m of mails) charsets.set(m.charset, (charsets.get(m.charset) ?? 0) + 1);
    const totalBytes = mails.reduce((s, m) => s + m.size, 0);
    process.stdout.write(
      `corpus: ${mails.length} mails, ${(totalBytes / 1024 / 1024).toFixed(1)} MB, ${mails.filter((m) => m.attachmentBytes).length} with a 200 KB attachment, ` +
        `${mails.filter((m) => m.parent !== null).length} replies (References/In-Reply-To only); subjects: ${[...charsets].map(([c, k]) => `${c} ${k}`).join(', ')} ` +
        `(built in ${((nowMs() - built) / 1000).toFixed(1)} s)\n\n`,
    );

    // (a) the ceiling
    const ceiling = await sinkServer(true);
    cleanups.push(ceiling.close);
    process.stdout.write('(a) bare smtp-server + mailparser …\n');
    const a = await deliverAll(ceiling.port, mails, HELPDESK, CONNECTIONS);
    await ceiling.close();
    const aRate = rate(mails.length, a.finishedAt - a.startedAt);
    const aLat = dataToReply(a);
    const aRss = peakRssMb();

    // (b) helpgate
    const relay = await sinkServer(false);
    cleanups.push(relay.close);
    const config = loadConfig({
      HELPGATE_DATA_DIR: path.join(workDir, 'data'),
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: '0',
      // Every mail is to become a ticket: an open helpdesk, not the hold-until-sign-in rule.
      UNBOUND_SENDERS: 'accept',
      OUTBOUND_SMTP_URL: `smtp://127.0.0.1:${relay.port}`,
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'error',
      ...(process.env.INGEST_CONCURRENCY ? { INGEST_CONCURRENCY: process.env.INGEST_CONCURRENCY } : {}),
    });
    // Always counted (cheap); the per-command table is printed with --profile.
    const profile = DbProfile.install();
    const startedDb = nowMs();
    const hg = await startHelpgate(config, { log: createLogger(config.logLevel), portal: false });
    cleanups.push(() => hg.stop());
    const engine = await engineDescription(hg);
    process.stdout.write(`(b) helpgate pipeline: ${engine}, started in ${((nowMs() - startedDb) / 1000).toFixed(1)} s, INGEST_CONCURRENCY=${config.ingest.concurrency} …\n`);
    const ingestSteps = countIngestSteps(hg);
    const b = await deliverAll(hg.smtp.port, mails, HELPDESK, CONNECTIONS);
    const refused = b.deliveries.filter((d) => d.code !== 250).length;
    const bIntakeRate = rate(mails.length - refused, b.finishedAt - b.startedAt);
    const bLat = dataToReply(b);
    const p = await waitForPipeline(hg, mails, b, ingestSteps, b.startedAt + deadlineMinutes * 60_000);
    const bRate = rate(p.articles, p.completedAt - b.startedAt);
    const relayed = relay.received();
    const children = childPeakRss();
    const bRss = peakRssMb();
    const writesPerMail = profile.writes() / mails.length;
    const writeCeiling = await durableWriteCeiling(hg);

    const ratio = bRate / aRate;
    const lines = [
      '',
      'results',
      `  database engine                         ${engine}`,
      `  (a) ceiling   throughput                ${aRate.toFixed(1)} msgs/s  (${((a.finishedAt - a.startedAt) / 1000).toFixed(1)} s)`,
      `  (b) helpgate  SMTP intake throughput    ${bIntakeRate.toFixed(1)} msgs/s  (${((b.finishedAt - b.startedAt) / 1000).toFixed(1)} s to the last 250)`,
      p.finished
        ? `  (b) helpgate  pipeline throughput       ${bRate.toFixed(1)} msgs/s  (${((p.completedAt - b.startedAt) / 1000).toFixed(1)} s until every article and automatic mail existed)`
        : `  (b) helpgate  pipeline throughput       ${bRate.toFixed(1)} msgs/s  (NOT FINISHED: ${p.articles}/${mails.length} articles after the ${deadlineMinutes} min deadline)`,
      `  ratio b/a (pipeline)                    ${ratio.toFixed(3)}   target ≥ ${TARGET_RATIO}: ${ratio >= TARGET_RATIO ? 'MET' : 'NOT MET'}`,
      `  ratio b/a (SMTP intake only)            ${(bIntakeRate / aRate).toFixed(3)}`,
      `  end of DATA → 250, p50 / p99   (a)      ${ms(percentile(aLat, 50))} / ${ms(percentile(aLat, 99))}`,
      `  end of DATA → 250, p50 / p99   (b)      ${ms(percentile(bLat, 50))} / ${ms(percentile(bLat, 99))}`,
      `  250 → article stored, p50 / p99         ${ms(percentile(p.articleLatency, 50))} / ${ms(percentile(p.articleLatency, 99))}`,
      `  250 → acknowledgement queued, p50 / p99 ${ms(percentile(p.ackLatency, 50))} / ${ms(percentile(p.ackLatency, 99))}`,
      `  outcome: ${p.articles} articles in ${p.tickets} tickets; ${p.threadedReplies}/${p.replies} replies threaded by References; ` +
        `${p.acks} acknowledgements and ${p.notifications} notifications queued (${relayed} already relayed); ${refused} refused at DATA; ${p.quarantined} not ingested`,
      `  (c) database: durable single-document writes, 8 concurrent: ${writeCeiling.toFixed(0)} writes/s; helpgate sent ${writesPerMail.toFixed(1)} writes per mail ` +
        `(intake, ingest and delivery of its automatic mails) → bound ≈ ${(writeCeiling / writesPerMail).toFixed(1)} msgs/s`,
      `  peak RSS of this process                ${aRss.toFixed(0)} MB after (a), ${bRss.toFixed(0)} MB after (b) (client, servers and helpgate share it)`,
      ...children.map((c) => `  peak RSS of child ${c.name.padEnd(21)} ${c.mb.toFixed(0)} MB`),
      ...(profiling ? ['', `database commands of helpgate's connection (top by total time; /msg = per mail sent in)`, ...profile.report(mails.length)] : []),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench:ingest failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
