import { chmodSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import mongoose from 'mongoose';
import { resolveDatabase, type EmbeddedEngine } from '../src/db/embedded.ts';
import { findPostgresBin } from '../src/db/engine/postgres.ts';
import { openStore } from '../src/db/store.ts';
import { runCli } from './helpers/cli.ts';
import { tempDataDir, testToolsDir } from './helpers/database.ts';
import { HELPDESK } from './helpers/helpgate.ts';

const { EJSON, ObjectId, Binary } = mongoose.mongo.BSON;

test('a data folder made by one engine is not opened by another: the refusal names the engine that holds it and how to move', async (t) => {
  const dataDir = tempDataDir('helpgate-mismatch-');
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const sqlite = await resolveDatabase({ dataDir, toolsDir: testToolsDir(), engine: 'sqlite' });
  await sqlite.stop();

  const forced = await runCli(['tickets', 'list', '--start-database'], { env: { HELPGATE_DATA_DIR: dataDir, HELPGATE_ENGINE: 'postgresql' } });
  t.is(forced.code, 1);
  t.regex(forced.stderr, new RegExp(`data folder ${dataDir} holds a FerretDB on SQLite database, but HELPGATE_ENGINE=postgresql`));
  t.regex(forced.stderr, /helpgate export --start-database > dump\.jsonl.*helpgate import --start-database < dump\.jsonl/);
  // Not forced: the folder keeps its engine.
  const kept = await runCli(['tickets', 'list', '--start-database'], { env: { HELPGATE_DATA_DIR: dataDir } });
  t.is(kept.code, 0, kept.stderr);
  t.is(kept.stdout, 'no tickets\n');
});

// Run as root, PostgreSQL runs as `nobody`, who cannot enter a private folder such as /root.
const asRootWithPostgres = process.getuid?.() === 0 && findPostgresBin() ? test : test.skip;
asRootWithPostgres('as root, a new data folder that PostgreSQL\'s account cannot reach takes SQLite and says why; forcing PostgreSQL there is refused', async (t) => {
  const parent = tempDataDir('helpgate-private-');
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  chmodSync(parent, 0o700);
  const dataDir = path.join(parent, 'data');
  const lines: string[] = [];
  const server = await resolveDatabase({ dataDir, toolsDir: testToolsDir(), log: (line) => lines.push(line) });
  await server.stop();
  t.is(server.engine, 'sqlite');
  t.true(lines.some((l) => l.includes(`cannot enter ${parent}`) && l.includes('using FerretDB on SQLite')), lines.join('\n'));

  const other = path.join(parent, 'forced');
  const error = await t.throwsAsync(resolveDatabase({ dataDir: other, toolsDir: testToolsDir(), engine: 'postgresql' }));
  t.regex(error!.message, new RegExp(`cannot enter ${parent}.*chmod o\\+x`));
});

test('an invalid HELPGATE_ENGINE is refused naming the variable', async (t) => {
  const result = await runCli(['tickets', 'list'], { env: { HELPGATE_ENGINE: 'oracle' } });
  t.is(result.code, 1);
  t.regex(result.stderr, /^helpgate: invalid configuration: HELPGATE_ENGINE: /);
});

test('export from FerretDB on SQLite and import into FerretDB on PostgreSQL: every document arrives with its types (ObjectId, Date, Binary)', async (t) => {
  t.timeout(180_000);
  const from = tempDataDir('helpgate-export-');
  const to = tempDataDir('helpgate-import-');
  const source = await resolveDatabase({ dataDir: from, toolsDir: testToolsDir(), engine: 'sqlite' });
  const target = await resolveDatabase({ dataDir: to, toolsDir: testToolsDir(), engine: 'postgresql' });
  t.teardown(async () => {
    await source.stop();
    await target.stop();
    rmSync(from, { recursive: true, force: true });
    rmSync(to, { recursive: true, force: true });
  });
  t.is(target.label.replace(/PostgreSQL [\d.]+/, 'PostgreSQL N'), 'FerretDB 1.24.2 on PostgreSQL N');

  // A real mail through the pipe (this process runs the folder's engine: the CLI reaches it),
  // and documents of every type a dump must keep.
  const mail = `From: <pia@move.example>\r\nTo: ${HELPDESK}\r\nSubject: Moving\r\nMessage-ID: <move-1@move.example>\r\n\r\nHello.\r\n`;
  const ingested = await runCli(['ingest'], { env: { HELPGATE_DATA_DIR: from }, stdin: mail });
  t.is(ingested.code, 0, ingested.stderr);
  const store = await openStore(source.uri);
  const probes = [
    { _id: new ObjectId(), at: new Date('2025-06-02T10:00:00.123Z'), bytes: new Binary(Buffer.from([0, 1, 2, 255])), nested: { list: [1, 'two', { three: 3 }] }, big: 2 ** 40 },
    { _id: new ObjectId(), at: new Date(0), bytes: new Binary(Buffer.alloc(0)), nested: {}, big: -1.5 },
  ];
  await store.conn.db!.collection('probes').insertMany(probes);
  const dumpOf = async (uri: string) => {
    const s = await openStore(uri);
    try {
      const out: Record<string, string[]> = {};
      for (const { name } of await s.conn.db!.listCollections({}, { nameOnly: true }).toArray()) {
        const docs = await s.conn.db!.collection(name).find({}).sort({ _id: 1 }).toArray();
        if (docs.length) out[name] = docs.map((d) => EJSON.stringify(d, { relaxed: false }));
      }
      return out;
    } finally {
      await s.close();
    }
  };
  const before = await dumpOf(source.uri);
  await store.close();
  t.is(before.inbox?.length, 1, `the ingested mail is stored: ${Object.keys(before).join(', ')}`);

  const exported = await runCli(['export'], { env: { HELPGATE_DATA_DIR: from } });
  t.is(exported.code, 0, exported.stderr);
  t.is(exported.stdout.trim().split('\n').length, Object.values(before).flat().length);
  const imported = await runCli(['import'], { env: { HELPGATE_DATA_DIR: to }, stdin: exported.stdout });
  t.is(imported.code, 0, imported.stderr);
  t.deepEqual(await dumpOf(target.uri), before);

  const back = await openStore(target.uri);
  t.teardown(() => back.close());
  const probe = await back.conn.db!.collection('probes').findOne({ _id: probes[0]!._id });
  t.true(probe?.at instanceof Date && probe.at.toISOString() === '2025-06-02T10:00:00.123Z');
  t.deepEqual(Buffer.from((probe?.bytes as InstanceType<typeof Binary>).buffer), Buffer.from([0, 1, 2, 255]));

  const again = await runCli(['import'], { env: { HELPGATE_DATA_DIR: to }, stdin: exported.stdout });
  t.is(again.code, 1);
  t.regex(again.stderr, /already holds data/);
});

const ODD_FOLDERS: [EmbeddedEngine, string][] = [
  ['sqlite', 'desk #1?x=%41, y'],
  // With a comma PostgreSQL is reached over TCP (FerretDB's driver would split the socket path).
  ['postgresql', 'desk #1?x=%41, y'],
  ['postgresql', 'desk "#1"?x=%41 y'],
];
for (const [engine, folder] of ODD_FOLDERS) {
  test(`FerretDB on ${engine === 'sqlite' ? 'SQLite' : 'PostgreSQL'} in a data folder named ${JSON.stringify(folder)}: the data is stored there and found again`, async (t) => {
    if (engine === 'postgresql' && !findPostgresBin()) return t.pass('no PostgreSQL server binaries here');
    t.timeout(120_000);
    const base = tempDataDir('helpgate-odd-path-');
    t.teardown(() => rmSync(base, { recursive: true, force: true }));
    const dataDir = path.join(base, folder);
    mkdirSync(dataDir, { mode: 0o711 });
    let db = await resolveDatabase({ dataDir, toolsDir: testToolsDir(), engine });
    t.teardown(() => db.stop());
    const write = await openStore(db.uri, { timeoutMs: 5000 });
    await write.conn.db!.collection('probe').insertOne({ kept: 'yes' });
    await write.close();
    await db.stop();
    if (engine === 'sqlite') t.true(readdirSync(path.join(dataDir, 'ferretdb')).some((f) => f.endsWith('.sqlite')), 'the SQLite files are in the data folder');
    t.deepEqual(readdirSync(base), [folder], 'nothing was written beside it (under a cut-off path)');

    db = await resolveDatabase({ dataDir, toolsDir: testToolsDir() });
    const read = await openStore(db.uri, { timeoutMs: 5000 });
    t.teardown(() => read.close());
    t.is((await read.conn.db!.collection('probe').findOne({}))?.kept, 'yes', 'the data is found again after a restart');
  });
}
