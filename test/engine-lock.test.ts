import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { projectRoot } from '../src/config/load.ts';
import { tempDataDir } from './helpers/database.ts';
import { runCli } from './helpers/cli.ts';
import { embeddedHelpgate, isRunning, processesUsing, readLock } from './helpers/engine-process.ts';
import { HELPDESK, smtpClient } from './helpers/helpgate.ts';
import { until } from './helpers/wait.ts';

const MAIL = `From: <pia@lock.example>\r\nTo: ${HELPDESK}\r\nSubject: Lock test\r\nMessage-ID: <lock-1@lock.example>\r\n\r\nHello.\r\n`;

function withDataDir(prefix: string) {
  const dataDir = tempDataDir(prefix);
  return { dataDir, cleanup: () => rmSync(dataDir, { recursive: true, force: true }) };
}

test('helpgate killed with SIGKILL leaves no engine process running, and the next start works on the same data folder', async (t) => {
  t.timeout(120_000);
  const { dataDir, cleanup } = withDataDir('helpgate-kill9-');
  const first = embeddedHelpgate(dataDir);
  t.teardown(() => first.kill('SIGKILL'));
  await first.start();
  const lock = readLock(dataDir)!;
  t.is(lock.pid, first.pid);
  const pids = lock.children.flatMap((c) => [c.pid, c.wrapperPid]);
  t.true(pids.length >= 2, JSON.stringify(lock));
  t.true(pids.every(isRunning));

  await first.kill('SIGKILL');
  const left = await until(() => (pids.some(isRunning) || processesUsing(dataDir).length ? null : []), { what: 'the engine processes to end', timeoutMs: 30_000 }).catch(() => [
    ...pids.filter(isRunning),
    ...processesUsing(dataDir),
  ]);
  t.deepEqual(left, [], 'no engine process outlives helpgate');

  const second = embeddedHelpgate(dataDir);
  t.teardown(async () => {
    await second.kill('SIGKILL');
    cleanup();
  });
  const client = smtpClient(await second.start());
  t.teardown(() => client.close());
  t.is(readLock(dataDir)!.pid, second.pid, 'the stale lock was taken over');
  const info = await client.sendMail({ envelope: { from: 'pia@lock.example', to: [HELPDESK] }, raw: MAIL });
  t.regex(info.response, /^250 /);
  const status = await runCli(['status'], { env: { HELPGATE_DATA_DIR: dataDir } });
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, new RegExp(`engine\\s+FerretDB .* \\(run by helpgate process ${second.pid}\\)`));
});

test('a CLI command run as another user (as an MTA runs `helpgate ingest`) reaches the running helpgate, whose PID it may not signal', async (t) => {
  if (process.getuid?.() !== 0) {
    t.pass('needs root, to run the command as nobody');
    return;
  }
  t.timeout(120_000);
  const { dataDir, cleanup } = withDataDir('helpgate-other-user-');
  const helpgate = embeddedHelpgate(dataDir);
  t.teardown(async () => {
    await helpgate.kill('SIGKILL');
    cleanup();
  });
  await helpgate.start();
  const child = spawn(process.execPath, [path.join(projectRoot, 'src/cli/helpgate.mjs'), 'ingest'], {
    cwd: os.tmpdir(),
    uid: 65534,
    gid: 65534,
    env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), HELPGATE_DATA_DIR: dataDir, LOG_LEVEL: 'silent', UNBOUND_SENDERS: 'accept' },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(MAIL);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  t.is(code, 0, stderr);
  const inbox = await runCli(['inbox', '--json'], { env: { HELPGATE_DATA_DIR: dataDir } });
  t.is((JSON.parse(inbox.stdout) as unknown[]).length, 1, 'stored in the running instance, no second engine started');
  t.is(readLock(dataDir)!.pid, helpgate.pid);
});

/** Child processes of `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  return processesUsingAny().filter((p) => p.ppid === pid).map((p) => p.pid);
}

function processesUsingAny(): { pid: number; ppid: number }[] {
  const out: { pid: number; ppid: number }[] = [];
  for (const name of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      out.push({ pid: Number(name), ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * A first helpgate on `firstDir` dies after its engines' tethers were cut (they run on); a
 * second one on `secondDir` (the same folder) must stop them through the lock file.
 */
async function orphansStoppedByNextStart(t: ExecutionContext, dataDir: string, firstDir: string, secondDir: string): Promise<void> {
  const first = embeddedHelpgate(firstDir);
  t.teardown(() => first.kill('SIGKILL'));
  await first.start();
  const engines = readLock(dataDir)!.children;
  // Cut the tethers (each wrapper and its pipe watcher), then kill helpgate: the engines run on.
  for (const c of engines) {
    for (const pid of childrenOf(c.wrapperPid).filter((p) => p !== c.pid)) process.kill(pid, 'SIGKILL');
    process.kill(c.wrapperPid, 'SIGKILL');
  }
  await first.kill('SIGKILL');
  t.true(
    engines.every((c) => isRunning(c.pid)),
    'the engines outlived their owner',
  );

  const second = embeddedHelpgate(secondDir);
  t.teardown(async () => {
    await second.kill('SIGKILL');
    for (const c of engines) if (isRunning(c.pid)) process.kill(c.pid, 'SIGKILL');
  });
  const client = smtpClient(await second.start());
  t.teardown(() => client.close());
  t.deepEqual(
    engines.filter((c) => isRunning(c.pid)).map((c) => c.name),
    [],
    'the orphans were stopped',
  );
  const info = await client.sendMail({ envelope: { from: 'pia@lock.example', to: [HELPDESK] }, raw: MAIL });
  t.regex(info.response, /^250 /);
}

test('engine processes left running by a dead owner (their tether cut) are stopped by the next start, through the lock file', async (t) => {
  t.timeout(120_000);
  const { dataDir, cleanup } = withDataDir('helpgate-orphans-');
  t.teardown(cleanup);
  await orphansStoppedByNextStart(t, dataDir, dataDir, dataDir);
});

test('orphans of an owner that reached the data folder through a symlink are recognised by a start that names the real folder', async (t) => {
  t.timeout(120_000);
  const { dataDir, cleanup } = withDataDir('helpgate-orphans-link-');
  const link = path.join(path.dirname(dataDir), `link-to-${path.basename(dataDir)}`);
  symlinkSync(dataDir, link);
  t.teardown(() => {
    rmSync(link, { force: true });
    cleanup();
  });
  await orphansStoppedByNextStart(t, dataDir, link, dataDir);
});

test('a second `helpgate serve` on the same data folder refuses, naming the process that has it', async (t) => {
  t.timeout(120_000);
  const { dataDir, cleanup } = withDataDir('helpgate-twice-');
  const first = embeddedHelpgate(dataDir);
  const second = embeddedHelpgate(dataDir);
  t.teardown(async () => {
    await second.kill('SIGKILL');
    await first.kill('SIGKILL');
    cleanup();
  });
  await first.start();
  const err = await t.throwsAsync(second.start());
  t.regex(err!.message, /exited \(1\) before its banner/);
  t.regex(err!.message, new RegExp(`data folder ${dataDir} is in use by helpgate process ${first.pid}`));
  t.true(first.running, 'the first one keeps running');
  t.is(readLock(dataDir)!.pid, first.pid);
});

test('a CLI command with no helpgate running says so (ingest: 75, so the MTA retries), and starts the database only with --start-database', async (t) => {
  t.timeout(120_000);
  const { dataDir, cleanup } = withDataDir('helpgate-cli-alone-');
  t.teardown(cleanup);
  const env = { HELPGATE_DATA_DIR: dataDir };
  const list = await runCli(['tickets', 'list'], { env });
  t.is(list.code, 1);
  t.regex(list.stderr, new RegExp(`no helpgate is running on the data folder ${dataDir}.*--start-database`));
  const ingest = await runCli(['ingest'], { env, stdin: MAIL });
  t.is(ingest.code, 75);
  t.regex(ingest.stderr, /no helpgate is running/);
  t.is(readLock(dataDir), null, 'no engine was started');

  const stored = await runCli(['ingest', '--start-database'], { env, stdin: MAIL });
  t.is(stored.code, 0, stored.stderr);
  const shown = await runCli(['inbox', '--json', '--start-database'], { env });
  t.is(shown.code, 0, shown.stderr);
  t.is((JSON.parse(shown.stdout) as unknown[]).length, 1, 'the stored message is in the data folder');
  t.is(readLock(dataDir), null, 'the command released the data folder');
  t.deepEqual(processesUsing(dataDir), [], 'and stopped the engine it started');
});

const LOCK_CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'engine-lock-child.ts');

test('several starters racing to take over a dead owner\'s lock: exactly one wins, the others are told who has the folder', async (t) => {
  t.timeout(60_000);
  const { dataDir, cleanup } = withDataDir('helpgate-takeover-');
  t.teardown(cleanup);
  // A dead owner (a process that has ended) that left an engine running.
  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => gone.once('close', resolve));
  const orphan = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', dataDir], { stdio: 'ignore' });
  const orphanGone = new Promise((resolve) => orphan.once('close', resolve));
  t.teardown(() => orphan.kill('SIGKILL'));
  const stale = { pid: gone.pid!, startTicks: null, engine: 'sqlite', label: 'FerretDB', uri: 'mongodb://127.0.0.1:1/', children: [{ name: 'ferretdb', pid: orphan.pid!, wrapperPid: orphan.pid!, stopSignal: 'SIGTERM' }] };
  writeFileSync(path.join(dataDir, 'helpgate.lock'), JSON.stringify(stale));

  const starters = Array.from({ length: 6 }, () => {
    const proc = spawn(process.execPath, ['--import', 'tsx', LOCK_CHILD, dataDir], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: proc.stdout });
    const next = () => new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      proc.once('close', (code) => reject(new Error(`starter ${proc.pid} exited (${code})`)));
    });
    return { proc, next };
  });
  t.teardown(() => starters.forEach((s) => s.proc.kill('SIGKILL')));
  await Promise.all(starters.map((s) => s.next()));
  const results = starters.map((s) => s.next().then((line) => ({ pid: s.proc.pid!, ...(JSON.parse(line) as { won: boolean; error?: string }) })));
  for (const s of starters) s.proc.stdin.write('go\n');
  const outcomes = await Promise.all(results);

  const winners = outcomes.filter((o) => o.won);
  t.is(winners.length, 1, JSON.stringify(outcomes));
  t.is(readLock(dataDir)?.pid, winners[0]?.pid, 'the lock file names the winner');
  for (const loser of outcomes.filter((o) => !o.won)) t.regex(loser.error ?? '', new RegExp(`in use by helpgate process ${winners[0]?.pid}`));
  await orphanGone;
  t.false(isRunning(orphan.pid!), 'the engine the dead owner left was stopped');

  for (const s of starters) s.proc.stdin.end();
  await Promise.all(starters.map((s) => new Promise((resolve) => (s.proc.exitCode !== null ? resolve(null) : s.proc.once('close', resolve)))));
  t.is(readLock(dataDir), null, 'the winner released the folder');
});
