import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/config/load.ts';
import type { TestDatabase } from './database.ts';

const CLI = path.join(projectRoot, 'src/cli/helpgate.mjs');

export interface CliResult {
  /** Exit code (null if killed by a signal). */
  code: number | null;
  stdout: string;
  /** stdout as bytes, for commands that write binary output (an archive). */
  stdoutBytes: Buffer;
  stderr: string;
}

/**
 * Each run costs a few CPU-seconds (Node and tsx start-up); on a small machine running test
 * files in parallel, more than two at a time starve everything else, so runs queue here.
 */
const MAX_RUNNING = 2;
let running = 0;
const waiting: (() => void)[] = [];

async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= MAX_RUNNING) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

/**
 * Runs the real `helpgate` command as a child process, as an operator or an MTA's pipe does.
 * The environment is built from scratch (PATH, quiet logs, a throwaway data folder, and
 * `env`), so nothing of the caller's MONGODB_URI or settings leaks in.
 */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return slot(() => run(args, opts));
}

export interface CliOptions {
  env?: Record<string, string>;
  stdin?: Buffer | string;
  timeoutMs?: number;
  /** Close the reading end of stdout at once, as `helpgate … | head -0` would. */
  closeStdout?: boolean;
}

async function run(args: string[], opts: CliOptions): Promise<CliResult> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-cli-'));
  try {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      LOG_LEVEL: 'silent',
      HELPGATE_DATA_DIR: dataDir,
      HTTP_PORT: '0',
      DEV_AAI_PORT: '0',
      UNBOUND_SENDERS: 'accept',
      ...opts.env,
    };
    if (process.env.HELPGATE_TOOLS_DIR) env.HELPGATE_TOOLS_DIR ??= process.env.HELPGATE_TOOLS_DIR;
    const child = spawn(process.execPath, [CLI, ...args], { env, cwd: projectRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    if (opts.closeStdout) child.stdout.destroy();
    else child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => {}); // a command that exits before reading stdin
    child.stdin.end(opts.stdin ?? '');
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`helpgate ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${Buffer.concat(err).toString()}`));
      }, timeoutMs);
      child.once('error', reject);
      child.once('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    return { code, stdout: Buffer.concat(out).toString('utf8'), stdoutBytes: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** A MongoDB URI naming one database in its path, as the CLI's MONGODB_URI takes it. */
export function uriWithDatabase(uri: string, dbName: string): string {
  const [base, ...query] = uri.split('?');
  const m = /^(mongodb(?:\+srv)?:\/\/[^/]+)(?:\/.*)?$/.exec(base!);
  if (!m) throw new Error(`not a MongoDB URI: ${uri}`);
  return `${m[1]}/${dbName}${query.length ? `?${query.join('?')}` : ''}`;
}

/** MONGODB_URI for the CLI, pointing at a test database (server and database name). */
export function cliDatabaseEnv(db: TestDatabase): Record<string, string> {
  return { MONGODB_URI: uriWithDatabase(db.uri, db.dbName), MONGODB_TIMEOUT_MS: '5000' };
}
