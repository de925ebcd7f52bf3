import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { FERRETDB_VERSION, installFerretdb } from '../ferretdb-install.ts';
import { engineHoldingDir, readEngineRecord, writeEngineRecord, type EngineRecord } from './data-dir.ts';
import { EngineMismatchError } from './errors.ts';
import { acquireLock } from './lock.ts';
import { canConnect, freePort, onPath, pause } from './net.ts';
import { findPostgresBin, pgAccess, postgresAccount, postgresArgs, postgresVersion, prepareCluster, unreachableFolder, waitForPostgres } from './postgres.ts';
import { Supervisor, type ChildSpec } from './supervise.ts';
import { spawnTethered, type Tethered, type TetherOptions } from './tether.ts';
import type { DatabaseServer, EmbeddedEngine, ResolveOptions } from './types.ts';
import { NoDatabaseError } from '../../errors/errors.ts';

const NAMES: Record<EmbeddedEngine, string> = { mongod: 'mongod', postgresql: 'FerretDB on PostgreSQL', sqlite: 'FerretDB on SQLite' };

function moveAdvice(from: EmbeddedEngine, to: EmbeddedEngine): string {
  return (
    `To move its data: with the old engine, \`HELPGATE_ENGINE=${from} helpgate export --start-database > dump.jsonl\` ` +
    `(while helpgate is stopped), then with an empty HELPGATE_DATA_DIR, \`HELPGATE_ENGINE=${to} helpgate import --start-database < dump.jsonl\`.`
  );
}

/**
 * Which engine runs this data folder. A folder keeps the engine that made it; a new one takes
 * the first available of mongod, PostgreSQL, SQLite. Forcing another engine than the one
 * holding the folder is refused: opening its files with another engine would show an empty
 * helpdesk, or worse.
 */
function chooseEngine(dataDir: string, forced: EmbeddedEngine | undefined, pgBin: string | null, log: (line: string) => void): EmbeddedEngine {
  const available = (e: EmbeddedEngine) => (e === 'mongod' ? onPath('mongod') : e === 'postgresql' ? pgBin !== null : true);
  const held = engineHoldingDir(dataDir);
  if (held && forced && held !== forced) {
    throw new EngineMismatchError(`the data folder ${dataDir} holds a ${NAMES[held]} database, but HELPGATE_ENGINE=${forced} asks for ${NAMES[forced]}. ${moveAdvice(held, forced)}`);
  }
  const wanted = forced ?? held;
  if (wanted && !available(wanted)) {
    const missing = wanted === 'postgresql' ? 'no PostgreSQL server binaries (initdb, postgres) are on PATH or in /usr/lib/postgresql/<version>/bin: install PostgreSQL (Debian: apt-get install postgresql)' : 'mongod is not on PATH';
    throw new NoDatabaseError(`${forced ? `HELPGATE_ENGINE=${forced}` : `the data folder ${dataDir} holds a ${NAMES[wanted]} database`}, but ${missing}.`);
  }
  if (wanted) return wanted;
  if (onPath('mongod')) return 'mongod';
  if (!pgBin) {
    log('no PostgreSQL server binaries found: using FerretDB on SQLite (slower; install PostgreSQL for a new data folder to use it)');
    return 'sqlite';
  }
  // Run as root, PostgreSQL runs as an unprivileged account, which must reach the folder: where
  // it cannot (a data folder under /root), a new folder takes SQLite rather than not starting.
  const clusterDir = path.join(dataDir, 'postgres');
  const account = postgresAccount(clusterDir);
  const blocked = account && unreachableFolder(clusterDir, account);
  if (blocked) {
    log(
      `PostgreSQL would run as ${account.name}, who cannot enter ${blocked.dir}: using FerretDB on SQLite for this new data folder ` +
        `(for PostgreSQL: a HELPGATE_DATA_DIR below searchable folders, e.g. /var/lib/helpgate, or run as an ordinary user)`,
    );
    return 'sqlite';
  }
  return 'postgresql';
}

/**
 * Finds the database: MONGODB_URI if set; else the embedded engine of the data folder
 * (mongod, FerretDB on a private PostgreSQL, or FerretDB on SQLite), started on the address
 * recorded in the folder, under the folder's lock, supervised, and tethered to this process.
 */
export async function resolveDatabase(opts: ResolveOptions): Promise<DatabaseServer> {
  if (opts.mongodbUri) {
    // The hosts, without credentials; a replica set lists several ("a:27017,b:27017").
    const hosts = /^mongodb(?:\+srv)?:\/\/(?:[^@/]*@)?([^/?]+)/.exec(opts.mongodbUri)?.[1] ?? '?';
    const port = Number(/:(\d+)/.exec(hosts.split(',')[0]!)?.[1] ?? 27017);
    return { uri: opts.mongodbUri, engine: 'external', port, label: `MongoDB at ${hosts}`, stop: async () => {} };
  }
  const log = opts.log ?? (() => {});
  const dataDir = path.resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const pgBin = findPostgresBin();
  const engine = chooseEngine(dataDir, opts.engine, pgBin, log);
  const lock = await acquireLock(dataDir);
  const supervisor = new Supervisor({
    log,
    restartWithinMs: opts.restartWithinMs ?? 60_000,
    onGiveUp: opts.onGiveUp ?? ((err) => log(err.message)),
    onChange: (children) => lock.update({ children }),
  });
  try {
    const record: EngineRecord = readEngineRecord(dataDir) ?? { engine, port: opts.port ?? (await freePort()) };
    if (engine === 'postgresql') record.pgPort ??= await freePort();
    const clusterDir = path.join(dataDir, 'postgres');
    // PostgreSQL's port is a TCP port only where its socket path is too long (see pgAccess).
    const pgTcpPort = engine === 'postgresql' && existsSync(path.join(clusterDir, 'PG_VERSION')) && !pgAccess(clusterDir, record.pgPort!).socketDir ? record.pgPort : undefined;
    for (const port of [record.port, pgTcpPort]) {
      if (port && (await canConnect(port))) throw new NoDatabaseError(`port ${port}, recorded in ${dataDir}/engine.json for its database, is taken by another program`);
    }
    let label: string;
    if (engine === 'mongod') {
      label = mongodVersion();
      const dbPath = path.join(dataDir, 'mongod');
      mkdirSync(dbPath, { recursive: true });
      await supervisor.add(listening('mongod', 'mongod', ['--dbpath', dbPath, '--bind_ip', '127.0.0.1', '--port', String(record.port), '--quiet'], record.port, { stopSignal: 'TERM' }));
    } else {
      // Absolute: on SQLite, FerretDB runs in its data folder.
      const ferretdb = path.resolve(await installFerretdb(opts.toolsDir, log));
      const common = [`--listen-addr=127.0.0.1:${record.port}`, '--telemetry=disable', '--log-level=error', '--debug-addr=-'];
      if (engine === 'postgresql') {
        const account = postgresAccount(clusterDir);
        await prepareCluster(pgBin!, clusterDir, account);
        label = `FerretDB ${FERRETDB_VERSION.replace(/^v/, '')} on ${postgresVersion(pgBin!)}`;
        const access = pgAccess(clusterDir, record.pgPort!);
        await supervisor.add({
          name: 'postgres',
          stopSignal: 'SIGINT',
          start: async () => {
            const child = await spawnTethered('postgres', path.join(pgBin!, 'postgres'), postgresArgs(clusterDir, access), {
              stopSignal: 'INT',
              cwd: clusterDir,
              ...(account ? { uid: account.uid, gid: account.gid } : {}),
            });
            await ready(child, () => waitForPostgres(clusterDir, access, child.pid, () => child.running, child.output));
            return child;
          },
        });
        const stateDir = path.join(dataDir, 'ferretdb-state');
        mkdirSync(stateDir, { recursive: true });
        await supervisor.add(listening('ferretdb', ferretdb, ['--handler=postgresql', `--postgresql-url=${access.url}`, `--state-dir=${stateDir}`, ...common], record.port, { stopSignal: 'TERM', env: access.env }));
      } else {
        label = `FerretDB ${FERRETDB_VERSION.replace(/^v/, '')} on SQLite`;
        const dir = path.join(dataDir, 'ferretdb');
        mkdirSync(dir, { recursive: true });
        // FerretDB hands SQLite "file:" + the decoded path, so a folder whose path holds # ? or %
        // would be cut or misread: it is given the folder as its working directory instead.
        await supervisor.add(listening('ferretdb', ferretdb, ['--handler=sqlite', '--sqlite-url=file:./', `--state-dir=${dir}`, ...common], record.port, { stopSignal: 'TERM', cwd: dir }));
      }
    }
    writeEngineRecord(dataDir, record);
    const uri = `mongodb://127.0.0.1:${record.port}/`;
    lock.update({ engine, label, uri });
    let stopped: Promise<void> | null = null;
    return {
      uri,
      engine,
      port: record.port,
      label,
      stop: () =>
        (stopped ??= (async () => {
          await supervisor.stop();
          lock.release();
        })()),
    };
  } catch (err) {
    await supervisor.stop();
    lock.release();
    throw err;
  }
}

/** A child that is ready once it accepts connections on 127.0.0.1:port. */
function listening(name: string, command: string, args: string[], port: number, tether: TetherOptions): ChildSpec {
  return {
    name,
    stopSignal: tether.stopSignal === 'INT' ? 'SIGINT' : 'SIGTERM',
    start: async () => {
      // Taken already: "accepts connections" below would then prove nothing about our child.
      if (await canConnect(port)) throw new NoDatabaseError(`${name} cannot listen on 127.0.0.1:${port}: another program has it`);
      const child = await spawnTethered(name, command, args, tether);
      await ready(child, async () => {
        const deadline = Date.now() + 60_000;
        while (!(await canConnect(port))) {
          if (!child.running) throw new NoDatabaseError(`${name} exited: ${child.output().slice(-1500)}`);
          if (Date.now() > deadline) throw new NoDatabaseError(`${name} did not listen on 127.0.0.1:${port} within 60 s: ${child.output().slice(-1500)}`);
          await pause(30);
        }
      });
      return child;
    },
  };
}

async function ready(child: Tethered, wait: () => Promise<void>): Promise<void> {
  try {
    await wait();
  } catch (err) {
    await child.stop(2000);
    throw err;
  }
}

/** `mongod --version`'s first line, for the label. */
export function mongodVersion(): string {
  return spawnSync('mongod', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'mongod';
}
