import { linkSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NoDatabaseError } from '../../errors/errors.ts';
import { DataDirInUseError } from './errors.ts';
import { removeQuietly, writeAtomically } from './data-dir.ts';
import { pause } from './net.ts';

/** An engine process helpgate started, as the lock file lists it. */
export interface LockedChild {
  name: string;
  pid: number;
  wrapperPid: number;
  stopSignal: 'SIGINT' | 'SIGTERM';
}

/** helpgate.lock: who runs this data folder's engine, where, and with which processes. */
export interface LockContent {
  pid: number;
  /** The owner's start time (/proc), so that a PID reused by another program is not taken for the owner. */
  startTicks: number | null;
  engine: string;
  label: string;
  uri: string;
  children: LockedChild[];
}

export const lockFile = (dataDir: string) => path.join(dataDir, 'helpgate.lock');

/**
 * Alive, also when it belongs to another user (EPERM: it exists, we may not signal it); a
 * zombie (exited, not yet reaped by its parent) is not.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc here: kill() said it exists
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // gone meanwhile: what we wanted
  }
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
export function startTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
  } catch {
    return null; // no /proc here, or the process is gone
  }
}

function readLock(dataDir: string): LockContent | null {
  try {
    return JSON.parse(readFileSync(lockFile(dataDir), 'utf8')) as LockContent;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function ownerAlive(lock: LockContent): boolean {
  if (!isAlive(lock.pid)) return false;
  const ticks = startTicks(lock.pid);
  return lock.startTicks === null || ticks === null || ticks === lock.startTicks;
}

/** The lock of a live owner, if any: the running instance of this data folder. */
export function liveLock(dataDir: string): LockContent | null {
  const lock = readLock(dataDir);
  return lock && ownerAlive(lock) ? lock : null;
}

export interface EngineLock {
  update(change: Partial<Omit<LockContent, 'pid' | 'startTicks'>>): void;
  release(): void;
}

/**
 * Takes the data folder for this process. A live owner → DataDirInUseError. A dead owner's
 * lock is taken over after stopping the engine processes it lists, if any still run.
 */
export async function acquireLock(dataDir: string): Promise<EngineLock> {
  const file = lockFile(dataDir);
  let content: LockContent = { pid: process.pid, startTicks: startTicks(process.pid), engine: '', label: '', uri: '', children: [] };
  const tryLink = (): boolean => {
    const tmp = `${file}.new-${process.pid}`;
    writeAtomically(tmp, JSON.stringify(content));
    try {
      linkSync(tmp, file); // atomic: fails if a lock exists, and the lock is never seen half-written
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return false;
    } finally {
      removeQuietly(tmp);
    }
  };
  for (let attempt = 0; !tryLink(); attempt++) {
    if (attempt >= 5) throw new NoDatabaseError(`could not take the lock ${file}: it keeps changing hands`);
    const held = readLock(dataDir);
    if (!held) continue;
    if (ownerAlive(held)) throw new DataDirInUseError(dataDir, held.pid);
    // Several starters can see the same dead owner: one at a time takes over, and only the
    // lock it saw (a second one would otherwise remove the first one's fresh lock).
    const taken = await whileGuarded(dataDir, async () => {
      const still = readLock(dataDir);
      if (!still || still.pid !== held.pid || still.startTicks !== held.startTicks) return false;
      await stopOrphans(still.children, dataDir);
      removeQuietly(file);
      return tryLink();
    });
    if (taken) break;
  }
  const releaseOnExit = () => release();
  const release = () => {
    process.removeListener('exit', releaseOnExit);
    if (readLock(dataDir)?.pid === process.pid) removeQuietly(file);
  };
  process.on('exit', releaseOnExit);
  return {
    update(change) {
      content = { ...content, ...change };
      writeAtomically(file, JSON.stringify(content));
    },
    release,
  };
}

const guardFile = (dataDir: string) => `${lockFile(dataDir)}.takeover`;

/**
 * Runs `work` holding helpgate.lock.takeover (created O_EXCL, naming this process). A guard
 * left by a dead process is removed; one held by a live process is waited for, as long as
 * stopping a dead owner's engines can take.
 */
async function whileGuarded<T>(dataDir: string, work: () => Promise<T>): Promise<T> {
  const guard = guardFile(dataDir);
  const mine = JSON.stringify({ pid: process.pid, startTicks: startTicks(process.pid) });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      writeFileSync(guard, mine, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const seen = readGuard(guard);
    if (seen !== null && !guardHolderAlive(seen)) removeStaleGuard(guard, seen);
    else if (Date.now() > deadline) throw new NoDatabaseError(`${guard} is held by a live process for more than 30 s; remove it if no helpgate is starting`);
    else await pause(20);
  }
  try {
    return await work();
  } finally {
    if (readGuard(guard) === mine) removeQuietly(guard);
  }
}

function readGuard(guard: string): string | null {
  try {
    return readFileSync(guard, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function guardHolderAlive(text: string): boolean {
  let holder: { pid: number; startTicks: number | null };
  try {
    holder = JSON.parse(text) as { pid: number; startTicks: number | null };
  } catch {
    return true; // being written (writeFileSync is not atomic): its writer is alive
  }
  return ownerAlive({ ...holder, engine: '', label: '', uri: '', children: [] });
}

/**
 * Removes the dead holder's guard, and only that one: it is moved aside first, and put back
 * if another starter had replaced it meanwhile.
 */
function removeStaleGuard(guard: string, seen: string): void {
  const aside = `${guard}.stale-${process.pid}`;
  try {
    renameSync(guard, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // another starter removed it
    throw err;
  }
  if (readFileSync(aside, 'utf8') !== seen) {
    try {
      linkSync(aside, guard);
    } catch (err) {
      // EEXIST: a third starter created a guard meanwhile. Its holder and the one whose guard
      // was moved aside both re-read the lock under "their" guard, and link theirs only if
      // none is there: at worst one of them waits for the other's lock and finds it live.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  removeQuietly(aside);
}

/**
 * A listed process still running with this data folder on its command line (not a reused
 * PID). Both sides are compared as real paths: the folder may be reached through a symlink.
 */
function stillOurs(pid: number, dataDir: string): boolean {
  if (!isAlive(pid)) return false;
  let args: string[];
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false; // gone meanwhile, or no /proc: nothing we can tell is ours
  }
  const folder = realPath(dataDir);
  return args.some((arg) => {
    const at = arg.indexOf('/'); // "-D /x", "--state-dir=/x", "file:/x/"
    if (at === -1) return false;
    const named = realPath(arg.slice(at));
    return named === folder || named.startsWith(`${folder}/`);
  });
}

/** The path with symlinks resolved, as far as it exists. */
function realPath(p: string): string {
  const resolved = path.resolve(p);
  try {
    return realpathSync(resolved);
  } catch {
    const parent = path.dirname(resolved);
    return parent === resolved ? resolved : path.join(realPath(parent), path.basename(resolved));
  }
}

/** Stops what a dead owner left running: last started first, cleanly, then by force. */
export async function stopOrphans(children: readonly LockedChild[], dataDir: string): Promise<void> {
  for (const child of [...children].reverse()) {
    if (!stillOurs(child.pid, dataDir)) continue;
    signal(child.pid, child.stopSignal);
    const deadline = Date.now() + 15_000;
    while (isAlive(child.pid) && Date.now() < deadline) await pause(50);
    if (isAlive(child.pid)) signal(child.pid, 'SIGKILL');
    while (isAlive(child.pid) && Date.now() < deadline + 5000) await pause(50);
    if (isAlive(child.pid)) throw new NoDatabaseError(`${child.name} (pid ${child.pid}), left running by a previous helpgate on ${dataDir}, does not stop`);
  }
  for (const child of children) if (stillOurs(child.wrapperPid, dataDir)) signal(child.wrapperPid, 'SIGKILL');
}
