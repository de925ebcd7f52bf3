import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NoDatabaseError } from '../../errors/errors.ts';
import { canConnect, canConnectToSocket, pause } from './net.ts';

/** Above every client's connections: FerretDB's PostgreSQL pool, sized in its URL. */
export const FERRETDB_PG_POOL = 200;
/** PostgreSQL's own limit, above FerretDB's pool (plus superuser slots and maintenance). */
const PG_MAX_CONNECTIONS = FERRETDB_PG_POOL + 20;
/** The cluster's superuser, the role FerretDB connects as. */
export const PG_ROLE = 'helpgate';

/** Where PostgreSQL's server binaries are: on PATH, else the newest /usr/lib/postgresql/<N>/bin. */
export function findPostgresBin(): string | null {
  const hasBoth = (dir: string) => existsSync(path.join(dir, 'postgres')) && existsSync(path.join(dir, 'initdb'));
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && hasBoth(dir)) return dir;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (hasBoth(path.join(root, v, 'bin'))) return path.join(root, v, 'bin');
  return null;
}

/** "PostgreSQL 15.18", from `postgres --version`. */
export function postgresVersion(bin: string): string {
  const out = spawnSync(path.join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }).stdout ?? '';
  const m = /\(PostgreSQL\)\s+(\S+)/.exec(out);
  return `PostgreSQL ${m?.[1] ?? '?'}`;
}

export interface Account {
  uid: number;
  gid: number;
  name: string;
}

function accountNamed(name: string): Account | null {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [user, , uid, gid] = line.split(':');
      if (user === name) return { name, uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    // no /etc/passwd: fall through
  }
  return null;
}

/**
 * PostgreSQL refuses to run as root. A root helpgate runs it (and only it) as the owner of an
 * existing cluster, else as `nobody`; anyone else runs it as themselves.
 */
export function postgresAccount(clusterDir: string): Account | null {
  if (process.getuid?.() !== 0) return null;
  if (existsSync(path.join(clusterDir, 'PG_VERSION'))) {
    const st = statSync(clusterDir);
    if (st.uid !== 0) return { uid: st.uid, gid: st.gid, name: `uid ${st.uid}` };
  }
  return accountNamed('nobody') ?? { uid: 65534, gid: 65534, name: 'nobody' };
}

/** The first folder above the cluster that `account` cannot enter, or null when it can reach it. */
export function unreachableFolder(clusterDir: string, account: Account): { dir: string; mode: number } | null {
  for (let dir = path.dirname(clusterDir); ; dir = path.dirname(dir)) {
    const st = statSync(dir);
    const bit = st.uid === account.uid ? 0o100 : st.gid === account.gid ? 0o010 : 0o001;
    if (!(st.mode & bit)) return { dir, mode: st.mode & 0o777 };
    if (dir === path.dirname(dir)) return null;
  }
}

/** Every folder above the cluster must be searchable by the account PostgreSQL runs as. */
function checkReachable(clusterDir: string, account: Account): void {
  const blocked = unreachableFolder(clusterDir, account);
  if (blocked) {
    throw new NoDatabaseError(
      `PostgreSQL refuses to run as root, so helpgate runs it as ${account.name}, who cannot enter ${blocked.dir} (mode ${blocked.mode.toString(8)}). ` +
        `Make that folder searchable (chmod o+x ${blocked.dir}), choose a HELPGATE_DATA_DIR below searchable folders (e.g. /var/lib/helpgate), ` +
        'run helpgate as an ordinary user, or set HELPGATE_ENGINE=sqlite.',
    );
  }
}

function run(bin: string, args: string[], account: Account | null, cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], ...(account ? { uid: account.uid, gid: account.gid } : {}) });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new NoDatabaseError(`${path.basename(bin)} exited with code ${code}: ${out.slice(-1500)}`))));
  });
}

/**
 * How FerretDB reaches the cluster. Through the unix socket inside the cluster folder (mode
 * 700: only PostgreSQL's account and root get in), with PostgreSQL not listening on TCP at
 * all: a TCP listener would let any local user in, and a superuser can run shell commands
 * (COPY ... TO PROGRAM). Where the socket's path would pass the kernel's limit (107 bytes) or
 * holds a comma, PostgreSQL listens on 127.0.0.1 and asks for the password kept in a 0600 file.
 */
export interface PgAccess {
  /** The socket's folder, or null for TCP on 127.0.0.1. */
  socketDir: string | null;
  port: number;
  /** FerretDB's --postgresql-url (never holding the password: command lines are public). */
  url: string;
  /** FerretDB's environment: the password, for TCP. */
  env: NodeJS.ProcessEnv;
}

const passwordFile = (clusterDir: string) => `${clusterDir}.password`;

export function pgAccess(clusterDir: string, pgPort: number): PgAccess {
  const params = `sslmode=disable&pool_max_conns=${FERRETDB_PG_POOL}`;
  // FerretDB's driver reads a comma in the socket's folder as a list of hosts: TCP then, too.
  if (Buffer.byteLength(path.join(clusterDir, `.s.PGSQL.${pgPort}`)) <= 103 && !clusterDir.includes(',')) {
    return { socketDir: clusterDir, port: pgPort, url: `postgres://${PG_ROLE}@/postgres?host=${encodeURIComponent(clusterDir)}&port=${pgPort}&${params}`, env: process.env };
  }
  const file = passwordFile(clusterDir);
  if (!existsSync(file)) {
    throw new NoDatabaseError(`the PostgreSQL cluster ${clusterDir} cannot be reached through a unix socket (path too long, or holding a comma) and has no password (${file} is missing): choose another HELPGATE_DATA_DIR`);
  }
  return { socketDir: null, port: pgPort, url: `postgres://${PG_ROLE}@127.0.0.1:${pgPort}/postgres?${params}`, env: { ...process.env, PGPASSWORD: readFileSync(file, 'utf8').trim() } };
}

/** Socket connections need no password (only the cluster's account and root reach the socket); TCP does. */
function writeHba(clusterDir: string, account: Account | null): void {
  const hba = path.join(clusterDir, 'pg_hba.conf');
  writeFileSync(hba, 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n');
  if (account) chownSync(hba, account.uid, account.gid);
}

/** Creates the cluster on first start (about half a second); checks it can be used on later ones. */
export async function prepareCluster(bin: string, clusterDir: string, account: Account | null): Promise<void> {
  if (account) checkReachable(clusterDir, account);
  if (existsSync(path.join(clusterDir, 'PG_VERSION'))) {
    const owner = statSync(clusterDir).uid;
    const me = account?.uid ?? process.getuid?.();
    if (me !== undefined && owner !== me) {
      throw new NoDatabaseError(`the PostgreSQL cluster ${clusterDir} belongs to uid ${owner}: run helpgate as that user (or as root)`);
    }
    writeHba(clusterDir, account); // clusters made before TCP needed a password trusted it
    return;
  }
  // initdb writes PG_VERSION long before it is done: it works in a folder of its own, moved
  // into place once complete, so that a cluster folder is always a finished one. What an
  // interrupted first start left is removed (we hold the data folder's lock: its owner is gone).
  const dataDir = path.dirname(clusterDir);
  const base = path.basename(clusterDir);
  for (const name of readdirSync(dataDir)) if (name.startsWith(`${base}.init-`) || name.startsWith(`${base}.pwfile-`)) rmSync(path.join(dataDir, name), { recursive: true, force: true });
  rmSync(clusterDir, { recursive: true, force: true });
  const initDir = `${clusterDir}.init-${process.pid}`;
  mkdirSync(initDir, { mode: 0o700 });
  if (account) chownSync(initDir, account.uid, account.gid);
  // The role's password, for TCP (used only where the socket path is too long): kept beside
  // the cluster for helpgate, and handed to initdb in a file of its own that initdb may read.
  const password = randomBytes(24).toString('base64url');
  writeFileSync(passwordFile(clusterDir), `${password}\n`, { mode: 0o600 });
  const pwfile = `${clusterDir}.pwfile-${process.pid}`;
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  try {
    if (account) chownSync(pwfile, account.uid, account.gid);
    await run(path.join(bin, 'initdb'), ['-D', initDir, '-U', PG_ROLE, '--auth-local=trust', '--auth-host=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C', '--no-instructions'], account, initDir);
  } finally {
    rmSync(pwfile, { force: true });
  }
  writeHba(initDir, account);
  renameSync(initDir, clusterDir);
}

/** The postgres command line: settings passed here so that they hold whatever the conf file says. */
export function postgresArgs(clusterDir: string, access: PgAccess): string[] {
  return [
    '-D', clusterDir,
    '-c', `listen_addresses=${access.socketDir ? '' : '127.0.0.1'}`,
    '-c', `port=${access.port}`,
    // Quoted (quotes doubled): the value is a comma-separated list, and the path may hold commas.
    '-c', `unix_socket_directories=${access.socketDir ? `"${access.socketDir.replace(/"/g, '""')}"` : ''}`,
    '-c', `max_connections=${PG_MAX_CONNECTIONS}`,
    '-c', 'synchronous_commit=on',
    '-c', 'fsync=on',
    '-c', 'log_min_messages=warning',
  ];
}

/**
 * Ready when postmaster.pid is this postgres's (not one left by a killed predecessor) and says
 * "ready" (it does after crash recovery), and the port answers.
 */
export async function waitForPostgres(clusterDir: string, access: PgAccess, pid: number, stillRunning: () => boolean, output: () => string): Promise<void> {
  const answers = () => (access.socketDir ? canConnectToSocket(path.join(access.socketDir, `.s.PGSQL.${access.port}`)) : canConnect(access.port));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (!stillRunning()) throw new NoDatabaseError(`postgres exited: ${output().slice(-1500)}`);
    let lines: string[] = [];
    try {
      lines = readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n');
    } catch {
      // not written yet
    }
    if (lines[0] === String(pid) && lines[7]?.trim() === 'ready' && (await answers())) return;
    await pause(30);
  }
  throw new NoDatabaseError(`postgres did not become ready on ${access.socketDir ?? '127.0.0.1'}:${access.port} within 60 s: ${output().slice(-1500)}`);
}
