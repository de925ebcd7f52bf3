import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import { canConnect, resolveDatabase } from '../src/db/embedded.ts';
import { findPostgresBin } from '../src/db/engine/postgres.ts';
import { openStore } from '../src/db/store.ts';
import { tempDataDir, testToolsDir } from './helpers/database.ts';
import { embeddedHelpgate, processesUsing, readEngineRecord } from './helpers/engine-process.ts';
import { HELPDESK, smtpClient } from './helpers/helpgate.ts';
import { until } from './helpers/wait.ts';

/**
 * Asks PostgreSQL on 127.0.0.1:port to start a session as the cluster's superuser, as any
 * local user could: the answer's authentication code (0: let in without a password, 10: SASL,
 * i.e. scram-sha-256), or the error it sends.
 */
function authenticationAsked(port: number): Promise<number | string> {
  return new Promise((resolve, reject) => {
    const params = Buffer.from('user\0helpgate\0database\0postgres\0\0');
    const startup = Buffer.alloc(8);
    startup.writeInt32BE(8 + params.length, 0);
    startup.writeInt32BE(196608, 4); // protocol 3.0
    const sock = net.connect({ host: '127.0.0.1', port }, () => sock.write(Buffer.concat([startup, params])));
    let got = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < 9) return;
      sock.destroy();
      resolve(got[0] === 0x52 /* R */ ? got.readInt32BE(5) : got.subarray(5).toString('latin1'));
    });
    sock.on('error', reject);
  });
}

const havePostgres = findPostgresBin() !== null;

test('the private PostgreSQL listens on no TCP port: FerretDB reaches it through the socket in its 0700 folder', async (t) => {
  if (!havePostgres) return t.pass('no PostgreSQL server binaries here');
  t.timeout(120_000);
  const dataDir = tempDataDir('helpgate-pg-socket-');
  const db = await resolveDatabase({ dataDir, toolsDir: testToolsDir(), engine: 'postgresql' });
  t.teardown(async () => {
    await db.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const store = await openStore(db.uri, { timeoutMs: 5000 });
  t.teardown(() => store.close());
  await store.conn.db!.collection('probe').insertOne({ stored: true });
  t.is(await store.conn.db!.collection('probe').countDocuments({ stored: true }), 1, 'FerretDB works on the cluster');
  t.false(await canConnect(readEngineRecord(dataDir).pgPort!), 'nothing accepts TCP connections on the PostgreSQL port');
});

test('where the socket path would be too long, PostgreSQL listens on 127.0.0.1 and asks for a password', async (t) => {
  if (!havePostgres) return t.pass('no PostgreSQL server binaries here');
  t.timeout(120_000);
  const base = tempDataDir('helpgate-pg-tcp-');
  // A socket path past the kernel's 107 bytes.
  const dataDir = path.join(base, 'a-data-folder-whose-path-is-too-long-for-a-unix-socket'.repeat(2));
  mkdirSync(dataDir, { mode: 0o711 });
  const db = await resolveDatabase({ dataDir, toolsDir: testToolsDir(), engine: 'postgresql' });
  t.teardown(async () => {
    await db.stop();
    rmSync(base, { recursive: true, force: true });
  });
  const store = await openStore(db.uri, { timeoutMs: 5000 });
  t.teardown(() => store.close());
  await store.conn.db!.collection('probe').insertOne({ stored: true });
  t.is(await store.conn.db!.collection('probe').countDocuments({ stored: true }), 1, 'FerretDB works on the cluster, with the password');
  t.is(await authenticationAsked(readEngineRecord(dataDir).pgPort!), 10, 'a local connection must authenticate (scram-sha-256), not be trusted');
});

test('a first start interrupted while initdb runs (helpgate and initdb killed) does not break the next start', async (t) => {
  if (!havePostgres) return t.pass('no PostgreSQL server binaries here');
  t.timeout(120_000);
  const dataDir = tempDataDir('helpgate-pg-initdb-');
  const first = embeddedHelpgate(dataDir, { HELPGATE_ENGINE: 'postgresql' });
  const second = embeddedHelpgate(dataDir, { HELPGATE_ENGINE: 'postgresql' });
  t.teardown(async () => {
    await first.kill('SIGKILL');
    await second.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  const firstStart = first.start().catch((err: Error) => err);
  // initdb has begun writing the cluster (PG_VERSION is among its first files), not finished.
  const initdb = await until(
    () => {
      const pid = processesUsing(dataDir).find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('initdb'));
      const begun = readdirSync(dataDir).some((name) => name.startsWith('postgres') && existsSync(path.join(dataDir, name, 'PG_VERSION')));
      return pid && begun ? pid : null;
    },
    { what: 'initdb to be half-way', timeoutMs: 60_000, intervalMs: 5 },
  );
  process.kill(initdb, 'SIGKILL');
  await first.kill('SIGKILL');
  await firstStart;

  const client = smtpClient(await second.start());
  t.teardown(() => client.close());
  const info = await client.sendMail({
    envelope: { from: 'pia@initdb.example', to: [HELPDESK] },
    raw: `From: <pia@initdb.example>\r\nTo: ${HELPDESK}\r\nSubject: After a broken first start\r\nMessage-ID: <initdb-1@initdb.example>\r\n\r\nHello.\r\n`,
  });
  t.regex(info.response, /^250 /, 'the second start made a working cluster');
});
