import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { NoDatabaseError } from '../errors/errors.ts';
import { ferretdbBinary, installFerretdb } from './ferretdb-install.ts';

export type Engine = 'external' | 'mongod' | 'ferretdb';

export interface DatabaseServer {
  readonly uri: string;
  readonly engine: Engine;
  readonly port: number;
  /** Stops the server this process started (no-op for an external one). */
  stop(): Promise<void>;
}

export interface ResolveOptions {
  mongodbUri?: string | undefined;
  dataDir: string;
  toolsDir: string;
  /** Pin the port (used to restart a stopped test server on the same address). */
  port?: number;
  /** Force an engine instead of the MONGODB_URI → mongod → FerretDB order. */
  engine?: Exclude<Engine, 'external'>;
  log?: (line: string) => void;
}

export function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

async function waitUntilListening(child: ChildProcess, port: number, name: string, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new NoDatabaseError(`${name} exited with code ${child.exitCode}: ${output().slice(-1500)}`);
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new NoDatabaseError(`${name} did not listen on 127.0.0.1:${port} within 60 s: ${output().slice(-1500)}`);
}

/** Servers this process started and has not stopped yet. */
const running = new Set<ChildProcess>();

/**
 * A server started here ends when this process does, also when it ends by an uncaught error:
 * an orphaned database would keep the port and the data folder, and the next start would run
 * a second server on the same files.
 */
export function endsWithThisProcess(child: ChildProcess): void {
  if (running.size === 0) process.once('exit', stopAllNow);
  running.add(child);
  child.once('exit', () => {
    running.delete(child);
    if (running.size === 0) process.removeListener('exit', stopAllNow);
  });
}

function stopAllNow(): void {
  for (const child of running) child.kill('SIGTERM');
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Finds the database: MONGODB_URI if set; else a mongod on PATH; else FerretDB (SQLite
 * backend), built on first use. Servers we start listen on a free loopback port, keep
 * their files under dataDir and stop with stop().
 */
export async function resolveDatabase(opts: ResolveOptions): Promise<DatabaseServer> {
  if (opts.mongodbUri && !opts.engine) {
    const port = Number(new URL(opts.mongodbUri.replace(/^mongodb(\+srv)?:/, 'http:')).port || 27017);
    return { uri: opts.mongodbUri, engine: 'external', port, stop: async () => {} };
  }
  const engine = opts.engine ?? (onPath('mongod') ? 'mongod' : 'ferretdb');
  const port = opts.port ?? (await freePort());
  let command: string;
  let args: string[];
  if (engine === 'mongod') {
    const dbPath = path.join(opts.dataDir, 'mongod');
    mkdirSync(dbPath, { recursive: true });
    command = 'mongod';
    args = ['--dbpath', dbPath, '--bind_ip', '127.0.0.1', '--port', String(port), '--quiet'];
  } else {
    const dir = path.join(opts.dataDir, 'ferretdb');
    mkdirSync(dir, { recursive: true });
    command = await installFerretdb(opts.toolsDir, opts.log);
    args = [
      '--handler=sqlite',
      `--sqlite-url=file:${dir}/`,
      `--state-dir=${dir}`,
      `--listen-addr=127.0.0.1:${port}`,
      '--telemetry=disable',
      '--log-level=error',
      '--debug-addr=-',
    ];
  }
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-8000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('error', (err) => {
    output += String(err);
  });
  endsWithThisProcess(child);
  await waitUntilListening(child, port, engine, () => output);
  return {
    uri: `mongodb://127.0.0.1:${port}/`,
    engine,
    port,
    stop: () => stopChild(child),
  };
}

export { ferretdbBinary };
