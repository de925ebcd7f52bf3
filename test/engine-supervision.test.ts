import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import type { Article } from '../src/db/models/article.ts';
import { openStore } from '../src/db/store.ts';
import { tempDataDir, testEngine, testToolsDir } from './helpers/database.ts';
import { resolveDatabase } from '../src/db/embedded.ts';
import { embeddedHelpgate, isRunning, processesUsing, readEngineRecord, readLock } from './helpers/engine-process.ts';
import { HELPDESK, smtpClient } from './helpers/helpgate.ts';
import { until } from './helpers/wait.ts';

/**
 * The process that stores the data: PostgreSQL when the engine has one, else FerretDB. After
 * killing it the test blocks its way back, so that it cannot come back until the test has
 * seen the outage from the outside, then unblocks it and watches helpgate recover by itself.
 */
function storageChild(dataDir: string): { name: string; pid: number; port: number } {
  const lock = readLock(dataDir)!;
  const record = readEngineRecord(dataDir);
  const pg = lock.children.find((c) => c.name === 'postgres');
  if (pg) return { name: 'postgres', pid: pg.pid, port: record.pgPort! };
  const ferretdb = lock.children.find((c) => c.name === 'ferretdb')!;
  return { name: 'ferretdb', pid: ferretdb.pid, port: record.port };
}

/** Kills the storage process and keeps it from starting again until `unblock`. */
async function killAndBlock(dataDir: string, victim: { name: string; pid: number; port: number }): Promise<{ unblock(): Promise<void> }> {
  process.kill(victim.pid, 'SIGKILL');
  if (victim.name === 'postgres') {
    // PostgreSQL listens on a socket in its folder, not on a port. A postmaster.pid naming a
    // live process of PostgreSQL's own account makes it refuse to start ("is another postmaster
    // running?"; another account's process it takes for stale).
    const clusterDir = path.join(dataDir, 'postgres');
    const { uid, gid } = statSync(clusterDir);
    const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore', ...(process.getuid?.() === 0 ? { uid, gid } : {}) });
    const pidFile = path.join(clusterDir, 'postmaster.pid');
    writeFileSync(pidFile, `${holder.pid}\n`, { mode: 0o644 });
    return {
      unblock: async () => {
        rmSync(pidFile, { force: true });
        if (holder.exitCode === null) await new Promise((resolve) => holder.once('close', resolve).kill('SIGKILL'));
      },
    };
  }
  const server = await occupy(victim.port);
  return { unblock: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** Takes a port as soon as its owner has died; every connection is dropped at once. */
async function occupy(port: number): Promise<net.Server> {
  return until(
    () =>
      new Promise<net.Server | null>((resolve) => {
        const server = net.createServer((sock) => sock.destroy());
        server.once('error', () => resolve(null));
        server.listen(port, '127.0.0.1', () => resolve(server));
      }),
    { what: `port ${port} to be free`, timeoutMs: 20_000, intervalMs: 20 },
  );
}

function mail(run: string, index: number) {
  const from = `sender-${index}@supervision.example`;
  const messageId = `<sup-${run}-${index}@supervision.example>`;
  const raw = [`From: <${from}>`, `To: ${HELPDESK}`, `Subject: Request ${index}`, `Message-ID: ${messageId}`, 'MIME-Version: 1.0', 'Content-Type: text/plain', '', `Request ${index}.`, ''].join('\r\n');
  return { messageId, envelope: { from, to: [HELPDESK] }, raw };
}

test('the database child killed mid-run: SMTP answers 451 (or 421 at the greeting) while it is down, helpgate brings it back by itself, every 250 becomes a ticket', async (t) => {
  t.timeout(180_000);
  const dataDir = tempDataDir('helpgate-supervision-');
  const helpgate = embeddedHelpgate(dataDir);
  t.teardown(async () => {
    await helpgate.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  const client = smtpClient(await helpgate.start());
  t.teardown(() => client.close());

  const run = randomBytes(4).toString('hex');
  const accepted: string[] = [];
  const answers: string[] = [];
  let next = 0;
  let sending = true;
  let acceptedAfterRecovery = 0;
  let recovered = false;
  const sender = async () => {
    while (sending) {
      const m = mail(run, next++);
      try {
        const info = await client.sendMail({ envelope: m.envelope, raw: m.raw });
        answers.push(info.response.slice(0, 3));
        accepted.push(m.messageId);
        if (recovered) acceptedAfterRecovery++;
      } catch (err) {
        answers.push(String((err as { responseCode?: number }).responseCode ?? (err as Error).message));
      }
    }
  };
  const senders = Promise.all([sender(), sender(), sender()]);
  await until(() => accepted.length >= 5, { what: 'the first mails accepted', timeoutMs: 60_000 });

  const victim = storageChild(dataDir);
  const blocker = await killAndBlock(dataDir, victim);
  const acceptedBeforeOutage = answers.length;
  await until(() => answers.slice(acceptedBeforeOutage).some((a) => a === '451' || a === '421'), { what: `a 451 or 421 while ${victim.name} is down`, timeoutMs: 60_000 }).catch((err: Error) => {
    throw new Error(`${err.message}; answers: ${answers.slice(acceptedBeforeOutage).join(',')}\n${helpgate.output}`);
  });
  await blocker.unblock();
  recovered = true;
  await until(() => acceptedAfterRecovery >= 5, { what: `mails accepted again after ${victim.name} came back`, timeoutMs: 90_000 }).catch((err: Error) => {
    throw new Error(`${err.message}; last answers: ${answers.slice(-10).join(',')}\n${helpgate.output}`);
  });
  sending = false;
  await senders;

  t.true(helpgate.running, 'helpgate kept running');
  const restarted = storageChild(dataDir);
  t.not(restarted.pid, victim.pid, `${victim.name} was started again`);
  t.is(restarted.port, victim.port, 'on the same address');
  t.regex(helpgate.output, new RegExp(`${victim.name} restarted`));

  const store = await openStore(readLock(dataDir)!.uri, { timeoutMs: 5000 });
  t.teardown(() => store.close());
  const missing = await until(
    async () => {
      const stored = new Set((await store.models.Article.find({}, { messageId: 1 }).lean<Pick<Article, 'messageId'>[]>()).map((a) => a.messageId));
      const notYet = accepted.filter((id) => !stored.has(id));
      return notYet.length === 0 ? [] : null;
    },
    { what: `all ${accepted.length} accepted mails to become articles`, timeoutMs: 90_000, intervalMs: 500 },
  );
  t.deepEqual(missing, []);
  t.is(await store.models.Ticket.countDocuments(), accepted.length, 'one ticket per accepted mail');
});

test('a database child that cannot be brought back within HELPGATE_ENGINE_RESTART_SECONDS: helpgate exits non-zero, saying why', async (t) => {
  t.timeout(120_000);
  const dataDir = tempDataDir('helpgate-giveup-');
  const helpgate = embeddedHelpgate(dataDir, { HELPGATE_ENGINE_RESTART_SECONDS: '3' });
  t.teardown(async () => {
    await helpgate.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  await helpgate.start();
  const victim = storageChild(dataDir);
  const children = readLock(dataDir)!.children;
  const blocker = await killAndBlock(dataDir, victim);
  t.teardown(() => blocker.unblock());
  await until(() => !helpgate.running, { what: 'helpgate to give up', timeoutMs: 60_000 });
  t.is(helpgate.exitCode, 1);
  t.regex(helpgate.output, new RegExp(`${victim.name} could not be restarted within 3 s`));
  // What it ran ends with it.
  await until(() => children.every((c) => !isRunning(c.pid)), { what: 'the engine processes to end', timeoutMs: 30_000 }).catch(() => {});
  t.deepEqual(
    children.filter((c) => isRunning(c.pid)).map((c) => c.name),
    [],
  );
});

test('stopping the database while a dead child is being started again: stop() ends only when that child is stopped too', async (t) => {
  t.timeout(120_000);
  const dataDir = tempDataDir('helpgate-stop-recovering-');
  const db = await resolveDatabase({ dataDir, toolsDir: testToolsDir(), engine: testEngine() });
  const frozen: number[] = [];
  t.teardown(async () => {
    for (const pid of frozen) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
    await db.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const victim = storageChild(dataDir);
  const others = readLock(dataDir)!.children.filter((c) => c.pid !== victim.pid);
  process.kill(victim.pid, 'SIGKILL');
  // Its replacement, caught (and held) while it starts: the restart is in flight. A first
  // attempt may end by itself (the dead one's leftovers still in the way): the next is caught.
  const isReplacement = (pid: number) => pid !== victim.pid && !others.some((c) => c.pid === pid || c.wrapperPid === pid) && !/^sh\0/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  const replacement = await until(
    () => {
      const pid = processesUsing(dataDir).find(isReplacement);
      if (pid === undefined) return null;
      process.kill(pid, 'SIGSTOP'); // throws (and is polled again) if it has ended meanwhile
      frozen.push(pid);
      return pid;
    },
    { what: `a new ${victim.name} process`, timeoutMs: 30_000, intervalMs: 2 },
  );
  const stopped = db.stop();
  await until(() => others.every((c) => !isRunning(c.pid)), { what: 'the other engine processes to stop', timeoutMs: 30_000 });
  try {
    process.kill(replacement, 'SIGCONT');
  } catch (err) {
    // Caught while it was already ending (a failed attempt): the supervisor tries again, or stops.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  await stopped;
  t.deepEqual(processesUsing(dataDir), [], 'nothing of the engine runs once stop() has returned');
  t.is(readLock(dataDir), null, 'and only then is the data folder released');
});
