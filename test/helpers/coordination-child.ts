/**
 * One process racing others on the coordination primitives (test/coordination.test.ts).
 * Usage: coordination-child.ts <uri> <dbName> <op> [arg]. It connects, prints "ready", waits
 * for "go" on stdin (so that all processes start together), runs the op and prints one JSON
 * line with its result. Ops "claim-and-die" and "lease-and-die" exit without settling or
 * releasing, as a killed worker would; "number-until-killed" numbers until it is killed.
 */
import { createInterface } from 'node:readline';
import { Schema } from 'mongoose';
import { converge, countInWindow, insertNumbered, insertOnce, Lease, WorkQueue } from '../../src/db/coordination/index.ts';
import type { InboxItem } from '../../src/db/models/inbox.ts';
import { openStore } from '../../src/db/store.ts';

const [uri, dbName, op, arg] = process.argv.slice(2) as [string, string, string, string | undefined];
const store = await openStore(uri, { dbName });
const Seq = store.conn.model('CoordSeq', new Schema({ _id: String, n: { type: Number, required: true } }, { collection: 'coordseq' }).index({ n: 1 }, { unique: true }));
await Seq.createCollection().catch(() => undefined);
await Seq.syncIndexes();
const KillSeq = store.conn.model('CoordKillSeq', new Schema({ _id: String, n: { type: Number, required: true } }, { collection: 'coordkillseq' }).index({ n: 1 }, { unique: true }));
await KillSeq.createCollection().catch(() => undefined);
await KillSeq.syncIndexes();
process.stdout.write('ready\n');
await new Promise<void>((resolve) => createInterface({ input: process.stdin }).once('line', () => resolve()));

const me = `p${process.pid}`;
const queue = (leaseMs: number) => new WorkQueue<InboxItem>({ items: store.models.Inbox, queue: store.models.InboxQueue, leaseMs, owner: me, isClaimable: (d) => d.state === 'pending' });
let result: unknown;
if (op === 'claim') {
  // Claims, and settles as done, until nothing is left.
  const q = queue(60_000);
  const ids: string[] = [];
  for (let claims = await q.claim(3, new Date()); claims.length; claims = await q.claim(3, new Date())) {
    ids.push(...claims.map((c) => String(c.doc._id)));
    await q.settle(claims.map((c) => ({ id: c.doc._id, update: { $set: { state: 'done', note: me, attempts: c.attempt } }, retryAt: null })));
  }
  result = ids;
} else if (op === 'claim-and-die') {
  const claims = await queue(Number(arg)).claim(100, new Date());
  process.stdout.write(`${JSON.stringify(claims.map((c) => String(c.doc._id)))}\n`);
  process.exit(0);
} else if (op === 'lease-and-die') {
  const held = await new Lease(store, Number(arg)).tryHold('coord-dead-lease', me, new Date());
  process.stdout.write(`${JSON.stringify(!!held)}\n`);
  process.exit(0);
} else if (op === 'number') {
  const out: number[] = [];
  for (let i = 0; i < Number(arg); i++) out.push((await insertNumbered<{ n: number }>({ model: Seq, field: 'n', first: 1, build: (n) => ({ _id: `${me}-${i}`, n }) })).doc.n);
  result = out;
} else if (op === 'number-until-killed') {
  // Several callers at once in this one process, as ingest workers creating tickets are,
  // until the parent kills the process with SIGKILL in the middle.
  const callers = Array.from({ length: Number(arg) }, async (_, c) => {
    for (let i = 0; ; i++) await insertNumbered<{ n: number }>({ model: KillSeq, field: 'n', first: 1, build: (n) => ({ _id: `${me}-${c}-${i}`, n }) });
  });
  process.stdout.write('numbering\n');
  await Promise.all(callers);
} else if (op === 'converge') {
  // Records this process's facts one by one (each an insert) and keeps one shared copy of all
  // facts up to date, as all the other processes do at the same time.
  const Facts = store.conn.model('CoordFact', new Schema({ _id: String }, { collection: 'coordfacts' }));
  const List = store.conn.model('CoordList', new Schema({ _id: String, items: [String] }, { collection: 'coordlist' }));
  const all = async () => (await Facts.find({}).lean<{ _id: string }[]>()).map((f) => f._id).sort();
  const outcomes: string[] = [];
  for (let i = 0; i < Number(arg); i++) {
    await insertOnce(Facts, { _id: `${me}-${i}` });
    outcomes.push(await converge<string[]>(List, 'shared', 'items', all, (stored, wanted) => JSON.stringify(stored ?? []) === JSON.stringify(wanted), 50));
  }
  result = outcomes;
} else if (op === 'once') {
  result = (await insertOnce(store.models.Secret, { _id: 'coord-once', value: me })).created;
} else if (op === 'lease') {
  result = !!(await new Lease(store, 60_000).tryHold('coord-lease', me, new Date()));
} else if (op === 'window') {
  let counted = 0;
  for (let i = 0; i < 10; i++) if (await countInWindow(store.models.RateWindow, 'coord-window', 7, 3_600_000, new Date())) counted++;
  result = counted;
}
process.stdout.write(`${JSON.stringify(result)}\n`);
await store.close();
