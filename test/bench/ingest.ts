/**
 * `npm run bench:ingest [-- --count N]`: how fast helpgate takes in mail, against the ceiling
 * of an SMTP server that only parses, on each database engine side by side.
 *
 *   ceiling: a bare smtp-server that parses each message with mailparser, then answers 250.
 *   Then, per engine (engines.ts: MONGODB_URI, or HELPGATE_ENGINE, or the default and SQLite),
 *   each part on a fresh database with outbound mail going to a local capture relay:
 *   - SMTP intake alone (ingest and outbox workers stopped);
 *   - the full pipeline, until every mail is an article and every acknowledgement and
 *     notification reached the relay, with the write commands per mail;
 *   - single new-ticket mails one at a time with no backlog: 250 → acknowledgement queued, and
 *     the write commands of one such mail including the delivery of what it caused.
 *
 * Every part gets the same corpus over the same 5 connections. It prints figures, then one
 * table of the targets, met or missed; it never fails on a figure, only on an error. Temporary
 * folders and database servers are removed at the end, also on Ctrl-C.
 *
 * Options: --count N (BENCH_COUNT, default 500); --deadline-minutes M (BENCH_DEADLINE_MINUTES,
 * default 3): stop waiting for an engine's pipeline then and print figures for the work done,
 * and send no more single mails after as long; --singles N (default 20): single mails timed; --profile (BENCH_PROFILE=1): the database
 * commands of each pipeline run by kind.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import { buildCorpus, type BenchMail } from './corpus.ts';
import { DbProfile } from './db-profile.ts';
import { EngineChoiceError, enginesFromEnv, startEngine, type EngineChoice } from './engines.ts';
import { CONNECTIONS, HELPDESK, measureIntake, measurePipeline, measureSingles } from './ingest-phases.ts';
import { engineDetails, summaryTable, type Ceiling, type EngineFailure, type EngineResult } from './ingest-report.ts';
import { SinkServer } from './sink.ts';
import { deliverAll, nowMs, percentile } from './smtp-load.ts';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

function positive(name: string, raw: string | undefined, fallback: number, integer = true): number {
  const n = raw === undefined ? fallback : Number(raw);
  if (!(n > 0) || (integer && !Number.isInteger(n))) {
    process.stderr.write(`bench:ingest: --${name} must be a positive ${integer ? 'integer' : 'number'}, got "${raw}"\n`);
    process.exit(2);
  }
  return n;
}

/** Peak resident memory of our child processes (the embedded database), from /proc where there is one. */
function childPeakRss(): { name: string; mb: number }[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return []; // no /proc here
  }
  const out: { name: string; mb: number }[] = [];
  for (const pid of pids) {
    try {
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      if (!m || Number(m[2]) !== process.pid) continue;
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (hwm) out.push({ name: m[1]!, mb: Number(hwm[1]) / 1024 });
    } catch {
      // the process ended between listing and reading
    }
  }
  return out;
}

async function measureCeiling(mails: BenchMail[]): Promise<Ceiling> {
  const sink = await SinkServer.listen(true);
  try {
    const load = await deliverAll(sink.port, mails, HELPDESK, CONNECTIONS);
    const replies = load.deliveries.map((d) => d.repliedAt - d.endOfDataAt);
    const seconds = (load.finishedAt - load.startedAt) / 1000;
    return { rate: mails.length / seconds, seconds, replyP50: percentile(replies, 50), replyP99: percentile(replies, 99) };
  } finally {
    await sink.close();
  }
}

interface RunOptions {
  mails: BenchMail[];
  singles: BenchMail[];
  deadlineMinutes: number;
  profileRows: number;
  toolsDir: string;
  workDir: string;
  profile: DbProfile;
  /** Registers a cleanup that runs on Ctrl-C; returns it so it can also run now. */
  onExit: (fn: () => Promise<void>) => () => Promise<void>;
}

async function runEngine(choice: EngineChoice, o: RunOptions): Promise<EngineResult> {
  const dir = path.join(o.workDir, choice.name);
  const db = await startEngine(choice, path.join(dir, 'database'), o.toolsDir);
  const stop = o.onExit(() => db.stop());
  try {
    process.stdout.write(`\n[${db.name}] ${db.label}\n`);
    const env = { db, dir, profile: o.profile };
    process.stdout.write('  SMTP intake alone …\n');
    const intake = await measureIntake(env, o.mails);
    process.stdout.write('  full pipeline …\n');
    const pipeline = await measurePipeline(env, o.mails, o.deadlineMinutes * 60_000, o.profileRows);
    process.stdout.write(`  ${o.singles.length} single new-ticket mails …\n`);
    const singles = await measureSingles(env, o.singles, o.deadlineMinutes * 60_000);
    return { name: db.name, label: db.label, intake, pipeline, singles, children: childPeakRss() };
  } finally {
    await stop();
  }
}

async function main(): Promise<void> {
  const count = positive('count', flag('count') ?? process.env.BENCH_COUNT, 500);
  const deadlineMinutes = positive('deadline-minutes', flag('deadline-minutes') ?? process.env.BENCH_DEADLINE_MINUTES, 3, false);
  const singlesCount = positive('singles', flag('singles'), 20);
  const profiling = process.argv.includes('--profile') || process.env.BENCH_PROFILE === '1';
  let choices: EngineChoice[];
  try {
    choices = enginesFromEnv();
  } catch (err) {
    if (!(err instanceof EngineChoiceError)) throw err;
    process.stderr.write(`bench:ingest: ${err.message}\n`);
    process.exit(2);
  }

  const workDir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-bench-'));
  // Searchable by others: a root run starts PostgreSQL as `nobody`, which must reach its cluster in here.
  chmodSync(workDir, 0o711);
  const cleanups = new Set<() => Promise<void>>();
  const onExit = (fn: () => Promise<void>) => {
    let once: Promise<void> | undefined;
    const run = () => (once ??= fn().finally(() => cleanups.delete(run)));
    cleanups.add(run);
    return run;
  };
  const cleanup = async () => {
    for (const fn of [...cleanups].reverse()) await fn().catch((err) => process.stderr.write(`cleanup: ${String(err)}\n`));
    rmSync(workDir, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: cleaning up…\n`);
      void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }

  let failed = false;
  try {
    process.stdout.write(
      `helpgate ingest benchmark: ${count} mails, ${CONNECTIONS} SMTP connections, engines: ${choices.map((c) => c.name).join(', ')}; node ${process.version}, ${os.cpus().length} CPUs\n`,
    );
    const built = nowMs();
    const mails = await buildCorpus({ count, helpdesk: HELPDESK });
    const charsets = new Map<string, number>();
    for (const m of mails) charsets.set(m.charset, (charsets.get(m.charset) ?? 0) + 1);
    const megabytes = mails.reduce((s, m) => s + m.size, 0) / 1024 / 1024;
    process.stdout.write(
      `corpus: ${mails.length} mails, ${megabytes.toFixed(1)} MB, ${mails.filter((m) => m.attachmentBytes).length} with a 200 KB attachment, ` +
        `${mails.filter((m) => m.parent !== null).length} replies (References/In-Reply-To only); subjects: ${[...charsets].map(([c, k]) => `${c} ${k}`).join(', ')} ` +
        `(built in ${((nowMs() - built) / 1000).toFixed(1)} s)\n`,
    );

    const ceiling = await measureCeiling(mails);
    process.stdout.write(
      `\nceiling (bare smtp-server + mailparser): ${ceiling.rate.toFixed(1)} msgs/s (${ceiling.seconds.toFixed(1)} s); end of DATA → 250 p50 / p99 ${ceiling.replyP50.toFixed(1)} / ${ceiling.replyP99.toFixed(1)} ms\n`,
    );

    // Installed before any helpgate connects: the driver's command monitoring must be on from the start.
    const profile = DbProfile.install();
    const singles = mails.filter((m) => m.parent === null).slice(0, singlesCount);
    const options: RunOptions = { mails, singles, deadlineMinutes, profileRows: profiling ? Number(process.env.BENCH_PROFILE_ROWS ?? 20) : 0, toolsDir: loadConfig({ HELPGATE_TOOLS_DIR: process.env.HELPGATE_TOOLS_DIR }).toolsDir, workDir, profile, onExit };
    const results: (EngineResult | EngineFailure)[] = [];
    for (const choice of choices) {
      try {
        const result = await runEngine(choice, options);
        results.push(result);
        process.stdout.write(`${engineDetails(result, ceiling, count, deadlineMinutes).join('\n')}\n`);
      } catch (err) {
        // One engine that cannot run does not hide the others' figures; the exit code says it.
        failed = true;
        const error = err instanceof Error ? err.message : String(err);
        results.push({ name: choice.name, error });
        const detail = err instanceof Error && !(err instanceof EngineChoiceError) ? (err.stack ?? error) : error;
        process.stderr.write(`bench:ingest: ${choice.name}: ${detail}\n`);
      }
    }
    process.stdout.write(`\n${summaryTable(results, ceiling).join('\n')}\n`);
  } finally {
    await cleanup();
  }
  if (failed) process.exit(1);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench:ingest failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
