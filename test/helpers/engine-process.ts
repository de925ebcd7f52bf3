import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LockContent } from '../../src/db/embedded.ts';
import { HelpgateProcess } from './helpgate-process.ts';
import { testEnv } from './helpgate.ts';

/** The data folder's lock file, as a running helpgate keeps it (null when there is none). */
export function readLock(dataDir: string): LockContent | null {
  try {
    return JSON.parse(readFileSync(path.join(dataDir, 'helpgate.lock'), 'utf8')) as LockContent;
  } catch {
    return null;
  }
}

export function readEngineRecord(dataDir: string): { engine: string; port: number; pgPort?: number } {
  return JSON.parse(readFileSync(path.join(dataDir, 'engine.json'), 'utf8')) as { engine: string; port: number; pgPort?: number };
}

/** Every process whose command line names this data folder: what an engine would leave behind. */
export function processesUsing(dataDir: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const state = /\) (\w)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
      if (cmdline.includes(dataDir) && state !== 'Z') pids.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Running: exists and is not a zombie (ended, not yet reaped by whoever adopted it). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return /\) (\w)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * `helpgate serve` as a process on its own embedded engine (no MONGODB_URI): the engine of
 * HELPGATE_ENGINE, or the default one. One Support Unit without members keeps the outbox small.
 */
export function embeddedHelpgate(dataDir: string, env: Record<string, string> = {}): HelpgateProcess {
  const units = path.join(dataDir, 'units.yaml');
  writeFileSync(units, 'units:\n  - key: first-line\n    name: First Line Support\n    address: first-line@helpdesk.localhost\n    entry: true\n    members: []\n');
  const { MONGODB_URI: _ignored, ...inherited } = process.env;
  return new HelpgateProcess({ ...inherited, ...testEnv({ LOG_LEVEL: 'warn' }), HELPGATE_DATA_DIR: dataDir, HELPGATE_CONFIG: units, ...env });
}
