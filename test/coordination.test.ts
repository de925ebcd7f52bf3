import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { Schema } from 'mongoose';
import { enqueueWork, Lease } from '../src/db/coordination/index.ts';
import type { InboxItem } from '../src/db/models/inbox.ts';
import { openStore, type Store } from '../src/db/store.ts';
import { startTestDatabase, type TestDatabase } from './helpers/database.ts';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'coordination-child.ts');
const PROCESSES = 4;

let db: TestDatabase;
let store: Store;

test.before(async () => {
  db = await startTestDatabase();
  store = await openStore(db.uri, { dbName: db.dbName });
});
test.after.always(async () => {
  await store?.close();
  await db?.cleanup();
});

interface Child {
  proc: ChildProcess;
  lines: string[];
  waitLines(n: number): Promise<string[]>;
}

function child(op: string, arg = ''): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, db.uri, db.dbName, op, arg], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let buffered = '';
  const waiters: (() => void)[] = [];
  proc.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
    waiters.splice(0).forEach((w) => w());
  });
  const ended = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    proc,
    lines,
    async waitLines(n) {
      while (lines.length < n) {
        const more = new Promise<void>((resolve) => waiters.push(resolve));
        await Promise.race([more, ended]);
        if (proc.exitCode !== null && lines.length < n) throw new Error(`child ${op} exited with ${proc.exitCode} after ${JSON.stringify(lines)}`);
      }
      return lines.slice(0, n);
    },
  };
}

/** Starts `n` processes running `op`, lets them go at the same moment, and returns each one's result. */
async function race<T>(op: string, arg = '', n = PROCESSES): Promise<T[]> {
  const children = Array.from({ length: n }, () => child(op, arg));
  try {
    await Promise.all(children.map((c) => c.waitLines(1)));
    for (const c of children) c.proc.stdin!.write('go\n');
    return await Promise.all(children.map(async (c) => JSON.parse((await c.waitLines(2))[1]!) as T));
  } finally {
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill();
  }
}

async function queueItems(count: number): Promise<string[]> {
  const now = new Date();
  const items = await store.models.Inbox.insertMany(
    Array.from({ length: count }, (_, i) => ({ source: 'smtp', envelope: { mailFrom: `c${i}@x.org`, rcptTo: ['help@helpdesk.localhost'] }, rawSha256: `c${i}`, size: 1, receivedAt: now, availableAt: now })),
  );
  await enqueueWork(store.models.InboxQueue, items.map((i) => i._id), now);
  return items.map((i) => String(i._id));
}

test.serial('several processes draining one queue: every item is handled once, by exactly one process', async (t) => {
  const ids = await queueItems(60);
  const results = await race<string[]>('claim');
  const all = results.flat();
  t.deepEqual([...all].sort(), [...ids].sort(), 'every item once');
  t.true(results.filter((r) => r.length > 0).length >= 2, 'the work was shared');
  const items = await store.models.Inbox.find({ _id: { $in: ids } }).lean<InboxItem[]>();
  t.true(items.every((i) => i.state === 'done' && i.attempts === 1));
  t.is(await store.models.InboxQueue.countDocuments({}), 0, 'the queue is empty: entries and claims gone');
});

test.serial('a process that dies holding claims: they lapse, and another process finishes the items', async (t) => {
  const ids = await queueItems(5);
  const dead = child('claim-and-die', '8000');
  await dead.waitLines(1);
  dead.proc.stdin!.write('go\n');
  const [, claimed] = await dead.waitLines(2);
  t.deepEqual(JSON.parse(claimed!).sort(), [...ids].sort(), 'the dying process held them all');
  // While the claims hold, nobody else takes them: a racing drain finds nothing.
  const during = await race<string[]>('claim', '', 2);
  t.deepEqual(during.flat(), []);
  // After the lease (8 s), they lapse: a drain takes every one, as attempt 2.
  let after: string[] = [];
  const deadline = Date.now() + 30_000;
  while (after.length < ids.length && Date.now() < deadline) after = after.concat((await race<string[]>('claim', '', 2)).flat());
  t.deepEqual(after.sort(), [...ids].sort());
  const items = await store.models.Inbox.find({ _id: { $in: ids } }).lean<InboxItem[]>();
  t.true(items.every((i) => i.state === 'done' && i.attempts === 2), 'taken over once each');
});

test.serial('numbered inserts from several processes: unique and without gaps', async (t) => {
  const results = await race<number[]>('number', '15');
  const all = results.flat().sort((a, b) => a - b);
  t.deepEqual(all, Array.from({ length: PROCESSES * 15 }, (_, i) => i + 1));
});

test.serial('insert-once, a lease and a window counter raced by several processes: one winner, the limit held', async (t) => {
  const once = await race<boolean>('once');
  t.is(once.filter(Boolean).length, 1, 'one process stored it, the others read it');
  const lease = await race<boolean>('lease');
  t.is(lease.filter(Boolean).length, 1, 'one process holds the lease');
  const counted = await race<number>('window');
  t.is(counted.reduce((s, n) => s + n, 0), 7, 'exactly the limit of 7 was counted');
});

test.serial('a lease whose holder died lapses by itself, and then another process gets it', async (t) => {
  const LEASE_MS = 5000;
  const dead = child('lease-and-die', String(LEASE_MS));
  await dead.waitLines(1);
  dead.proc.stdin!.write('go\n');
  t.is((await dead.waitLines(2))[1], 'true');
  const leases = new Lease(store, LEASE_MS);
  t.is(await leases.tryHold('coord-dead-lease', 'parent', new Date()), null, 'held by the dead process for now');
  const deadline = Date.now() + 30_000;
  let held = null;
  while (!held && Date.now() < deadline) held = await leases.hold('coord-dead-lease', 'parent', () => new Date(), 1000);
  t.truthy(held, 'taken over after the lease');
});

test.serial('numbered inserts from concurrent callers in one process, SIGKILLed mid-way several times: no number is skipped', async (t) => {
  const KillSeq = store.conn.model('CoordKillSeq', new Schema({ _id: String, n: Number }, { collection: 'coordkillseq' }));
  const numbers = async () => (await KillSeq.find({}, { n: 1 }).lean<{ n: number }[]>()).map((d) => d.n).sort((a, b) => a - b);
  for (let round = 1; round <= 8; round++) {
    const before = (await numbers()).length;
    const numbering = child('number-until-killed', '16');
    await numbering.waitLines(1);
    numbering.proc.stdin!.write('go\n');
    await numbering.waitLines(2);
    // Killed while its eight callers are inserting: at a different count each round.
    const target = before + 10 + randomInt(40);
    const deadline = Date.now() + 60_000;
    while ((await KillSeq.countDocuments({})) < target && Date.now() < deadline) await new Promise<void>((resolve) => setImmediate(resolve));
    const exited = new Promise<void>((resolve) => numbering.proc.once('exit', () => resolve()));
    numbering.proc.kill('SIGKILL');
    await exited;
  }
  const all = await numbers();
  t.true(all.length >= 80, `numbers stored: ${all.length}`);
  t.deepEqual(all, Array.from({ length: all.length }, (_, i) => i + 1), 'numbers 1..n, none skipped');
});

test.serial('a copy of facts several processes add to at once, kept by converge: it ends up with every fact', async (t) => {
  const List = store.conn.model('CoordList', new Schema({ _id: String, items: [String] }, { collection: 'coordlist' }));
  await List.create({ _id: 'shared', items: [] });
  const outcomes = await race<string[]>('converge', '5');
  t.true(outcomes.flat().every((o) => o === 'done'), outcomes.flat().join(' '));
  const stored = await List.findById('shared').lean<{ items: string[] }>();
  t.is(stored?.items.length, PROCESSES * 5, 'no fact lost to a concurrent write');
});
