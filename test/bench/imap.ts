/**
 * `npm run bench:imap [-- --count N --samples K]`: how fast helpgate takes in mail from a
 * mailbox, compared with its SMTP intake measured in the same run.
 *
 *   (s) SMTP: the corpus over 5 SMTP connections into a helpgate with its own database,
 *       timed from the first byte until every mail is an article of a ticket;
 *   (i) IMAP: the same corpus APPENDed to a real Dovecot mailbox (one client) while a second
 *       helpgate, on a fresh database, reads it; timed from the first APPEND until every mail is
 *       an article; then
 *   (l) latency: K single mails appended one at a time to the idle mailbox (IDLE), each timed
 *       from the end of its APPEND until its article was written; p50 / p99.
 *
 * Prints figures and ratios and never fails on one. Needs Dovecot (dovecot-imapd) and root (as
 * the tests). Options: --count N (BENCH_COUNT, default 2000), --samples K (BENCH_SAMPLES,
 * default 200), --deadline-minutes M (BENCH_DEADLINE_MINUTES, default 30, per phase).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { parse as parseYaml } from 'yaml';
import { exampleConfigPath, loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/log/logger.ts';
import { startHelpgate, type Helpgate } from '../../src/main.ts';
import { Dovecot } from '../helpers/dovecot.ts';
import { buildCorpus, type BenchMail } from './corpus.ts';
import { deliverAll, nowMs, percentile } from './smtp-load.ts';

const HELPDESK = 'help@helpdesk.localhost';

function option(name: string, env: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : (process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? process.env[env]);
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`bench:imap: --${name} / ${env} must be a positive number, got "${raw}"\n`);
    process.exit(2);
  }
  return n;
}

/** The message as stored in a mailbox: DATA without its dot-stuffing and final ".". */
function rawOf(mail: BenchMail): Buffer {
  const text = mail.data.toString('latin1').replace(/\r\n\.\r\n$/, '\r\n');
  return Buffer.from(text.replace(/^\.\./, '.').replace(/\r\n\.\./g, '\r\n.'), 'latin1');
}

/** The outbound relay: accepts and drops. */
async function sink(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    hideSTARTTLS: true,
    logger: false,
    onData: (stream, _s, cb) => {
      stream.resume();
      stream.once('end', () => cb(null, 'Ok'));
    },
  });
  server.on('error', () => {}); // a client dropping its connection is not the benchmark's failure
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { port: (server.server.address() as AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Items the ingest worker has handled: progress without a count query. */
function countIngestSteps(hg: Helpgate): () => number {
  return () => hg.ingest.handled;
}

/** Waits until `n` mails are articles; returns when the last one was written, or at the deadline how many were done (finished: false). */
async function untilArticles(hg: Helpgate, n: number, steps: () => number, deadline: number, label: string): Promise<{ at: number; articles: number; finished: boolean }> {
  const { Inbox, Article } = hg.store.models;
  let lastCheck = 0;
  let lastReport = Date.now();
  while (Date.now() < deadline) {
    if (steps() >= n && Date.now() - lastCheck > 2000) {
      lastCheck = Date.now();
      if ((await Inbox.countDocuments({ state: 'pending' })) === 0) {
        const articles = await Article.find({ direction: 'in' }, { createdAt: 1 }).lean<{ createdAt: Date }[]>();
        if (articles.length >= n) return { at: Math.max(...articles.map((a) => new Date(a.createdAt).getTime())), articles: articles.length, finished: true };
      }
    }
    if (Date.now() - lastReport > 60_000) {
      lastReport = Date.now();
      process.stdout.write(`  … ${label}: ${Math.min(steps(), n)}/${n} ingested\n`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { at: nowMs(), articles: await Article.countDocuments({ direction: 'in' }), finished: false };
}

async function main(): Promise<void> {
  const count = option('count', 'BENCH_COUNT', 2000);
  const samples = option('samples', 'BENCH_SAMPLES', 200);
  const deadlineMs = option('deadline-minutes', 'BENCH_DEADLINE_MINUTES', 30) * 60_000;
  const work = mkdtempSync(path.join(os.tmpdir(), 'helpgate-bench-imap-'));
  // Searchable by others: a root run starts PostgreSQL as `nobody`, which must reach its cluster in here.
  chmodSync(work, 0o711);
  const cleanups: (() => Promise<void>)[] = [async () => rmSync(work, { recursive: true, force: true })];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch((err) => process.stderr.write(`cleanup: ${String(err)}\n`));
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  }
  try {
    process.stdout.write(`helpgate IMAP benchmark: ${count} mails (SMTP and IMAP), ${samples} single-mail latency samples, node ${process.version}, ${os.cpus().length} CPUs\n`);
    const mails = await buildCorpus({ count, helpdesk: HELPDESK });
    const extra = await buildCorpus({ count: samples, helpdesk: HELPDESK, seed: 7, replyShare: 0, attachmentShare: 0 });
    const bytes = mails.reduce((s, m) => s + m.size, 0);
    process.stdout.write(`corpus: ${mails.length} mails, ${(bytes / 1024 / 1024).toFixed(1)} MB, ${mails.filter((m) => m.attachmentBytes).length} with a large attachment, ${mails.filter((m) => m.parent !== null).length} replies\n`);
    const relay = await sink();
    cleanups.push(relay.close);
    const dovecot = await new Dovecot([{ name: 'bench', password: 'bench-secret' }]).start();
    cleanups.push(() => dovecot.cleanup());
    // The example organisation (its units notify their members), plus the mailbox for (i).
    const units = parseYaml(readFileSync(exampleConfigPath, 'utf8')) as object;
    const withMailbox = path.join(work, 'helpgate-imap.json');
    writeFileSync(
      withMailbox,
      JSON.stringify({ ...units, mailboxes: [{ name: 'help', host: '127.0.0.1', port: dovecot.port, tls: 'none', user: 'bench', password: 'bench-secret', afterStore: 'move' }] }),
    );
    const env = (dataDir: string, configFile?: string) => ({
      HELPGATE_DATA_DIR: path.join(work, dataDir),
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: '0',
      UNBOUND_SENDERS: 'accept',
      OUTBOUND_SMTP_URL: `smtp://127.0.0.1:${relay.port}`,
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'error',
      ...(configFile ? { HELPGATE_CONFIG: configFile } : {}),
    });

    // (s) SMTP
    process.stdout.write('(s) SMTP intake …\n');
    const hgS = await startHelpgate(loadConfig(env('data-smtp')), { log: createLogger(process.env.BENCH_LOG_LEVEL ?? 'error'), portal: false });
    let stopS: Promise<void> | null = null;
    cleanups.push(() => (stopS ??= hgS.stop()));
    const stepsS = countIngestSteps(hgS);
    const load = await deliverAll(hgS.smtp.port, mails, HELPDESK, 5);
    const doneS = await untilArticles(hgS, mails.length, stepsS, load.startedAt + deadlineMs, 'SMTP');
    const smtpRate = doneS.articles / ((doneS.at - load.startedAt) / 1000);
    const smtpIntakeRate = mails.length / ((load.finishedAt - load.startedAt) / 1000);
    await (stopS ??= hgS.stop());

    // (i) IMAP backlog
    process.stdout.write('(i) IMAP intake …\n');
    const log = createLogger(process.env.BENCH_LOG_LEVEL ?? 'error');
    const hgI = await startHelpgate(loadConfig(env('data-imap', withMailbox)), { log, portal: false });
    cleanups.push(() => hgI.stop());
    const stepsI = countIngestSteps(hgI);
    const imapStarted = nowMs();
    let appendedAt = 0;
    await dovecot.withClient('bench', async (c) => {
      for (const m of mails) await c.append('INBOX', rawOf(m));
      appendedAt = nowMs();
    });
    const doneI = await untilArticles(hgI, mails.length, stepsI, imapStarted + deadlineMs, 'IMAP');
    const imapRate = doneI.articles / ((doneI.at - imapStarted) / 1000);
    const appendRate = mails.length / ((appendedAt - imapStarted) / 1000);
    const rssAfterBacklog = process.resourceUsage().maxRSS / 1024;

    // (l) APPEND → article with IDLE, one mail at a time
    process.stdout.write('(l) single mails, APPEND → article …\n');
    const { Article } = hgI.store.models;
    const delays: number[] = [];
    await dovecot.withClient('bench', async (c) => {
      // Only on an idle mailbox: behind an unfinished backlog it would time the backlog.
      for (const m of doneI.finished ? extra : []) {
        const stepsBefore = stepsI();
        await c.append('INBOX', rawOf(m));
        const appended = nowMs();
        // The database is asked only after the ingest worker finished a step: a look-up by
        // Message-ID is a scan on FerretDB, and polling it would slow what is measured.
        const article = await (async () => {
          const until = Date.now() + 60_000;
          let seen = stepsBefore;
          while (Date.now() < until) {
            if (stepsI() > seen) {
              seen = stepsI();
              const a = await Article.findOne({ messageId: m.messageId }, { createdAt: 1 }).lean<{ createdAt: Date }>();
              if (a) return a;
            }
            await new Promise((r) => setTimeout(r, 5));
          }
          return null;
        })();
        if (article) delays.push(new Date(article.createdAt).getTime() - appended);
      }
    });
    const backlogLeft = (await dovecot.list('bench', 'INBOX')).length;
    const processed = (await dovecot.list('bench', 'Processed')).length;

    const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : 'n/a');
    const lines = [
      '',
      'results',
      `  database engine                          ${hgI.database.engine}`,
      `  (s) SMTP  intake (to the last 250)       ${smtpIntakeRate.toFixed(1)} msgs/s`,
      `  (s) SMTP  until every mail is a ticket   ${smtpRate.toFixed(1)} msgs/s  (${((doneS.at - load.startedAt) / 1000).toFixed(1)} s${doneS.finished ? '' : `; NOT FINISHED: ${doneS.articles}/${mails.length} at the deadline`})`,
      `  (i) IMAP  APPEND of the corpus           ${appendRate.toFixed(1)} msgs/s  (one Dovecot client, while helpgate reads)`,
      `  (i) IMAP  until every mail is a ticket   ${imapRate.toFixed(1)} msgs/s  (${((doneI.at - imapStarted) / 1000).toFixed(1)} s from the first APPEND${doneI.finished ? '' : `; NOT FINISHED: ${doneI.articles}/${mails.length} at the deadline`})`,
      `  ratio IMAP / SMTP (until tickets)        ${(imapRate / smtpRate).toFixed(3)}`,
      `  (l) APPEND → article with IDLE, p50/p99  ${ms(percentile(delays, 50))} / ${ms(percentile(delays, 99))}  (${delays.length}/${extra.length} samples, max ${ms(Math.max(...delays))})`,
      `  mailbox afterwards                       ${backlogLeft} left in INBOX, ${processed} in Processed`,
      `  peak RSS of this process                 ${rssAfterBacklog.toFixed(0)} MB after the IMAP backlog (helpgate, Dovecot client and relay share it)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench:imap failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
