import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { NoDatabaseError } from '../../errors/errors.ts';

/**
 * Runs `command` under a small sh wrapper that stops it when this process goes, however it
 * goes (SIGKILL included): the wrapper's stdin is a pipe whose only writer is this process,
 * so the kernel closes it when we die; the wrapper reads EOF and sends the engine its clean
 * shutdown signal (SIGINT is PostgreSQL's "fast" shutdown). The engine's stdout and stderr
 * both arrive on the wrapper's stderr; the wrapper's stdout carries the engine's PID.
 * Background jobs of a non-interactive sh read /dev/null, hence the explicit fd 3.
 */
const WRAPPER = `
sig=$1; shift
exec 3<&0
"$@" </dev/null >&2 &
child=$!
echo "$child"
{ read -r _ <&3; kill -s "$sig" "$child" 2>/dev/null; } &
watcher=$!
wait "$child"
code=$?
kill "$watcher" 2>/dev/null
exit "$code"
`;

export interface TetherOptions {
  /** Signal for a clean, prompt shutdown. */
  stopSignal: 'INT' | 'TERM';
  cwd?: string;
  /** Run as this account (PostgreSQL refuses root). */
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
}

export interface Tethered {
  readonly name: string;
  /** The engine's own PID. */
  readonly pid: number;
  /** The wrapper's PID. */
  readonly wrapperPid: number;
  /** Resolves with the exit code (128 + signal when killed) once the wrapper is gone. */
  readonly exited: Promise<number>;
  readonly running: boolean;
  /** The last few kilobytes the engine wrote. */
  output(): string;
  /** Asks for a clean shutdown and waits; SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

export async function spawnTethered(name: string, command: string, args: string[], opts: TetherOptions): Promise<Tethered> {
  const child: ChildProcess = spawn('sh', ['-c', WRAPPER, 'helpgate-tether', opts.stopSignal, command, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group: a Ctrl-C in the terminal reaches helpgate, which stops the
    // engines in order, instead of reaching the engines while helpgate still uses them.
    detached: true,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
    ...(opts.env ? { env: opts.env } : {}),
  });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => {
    out = (out + d.toString()).slice(-8000);
  });
  child.on('error', (err) => {
    out += String(err);
  });
  let running = true;
  const exited = new Promise<number>((resolve) => {
    child.once('close', (code, signal) => {
      running = false;
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
  const pid = await new Promise<number>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (d: Buffer) => {
      text += d.toString();
      const m = /^(\d+)\n/.exec(text);
      if (m) resolve(Number(m[1]));
    });
    void exited.then(() => reject(new NoDatabaseError(`${name} could not be started: ${out.slice(-1500)}`)));
  });
  const wrapperPid = child.pid!;
  return {
    name,
    pid,
    wrapperPid,
    exited,
    get running() {
      return running;
    },
    output: () => out,
    async stop(graceMs = 15_000) {
      if (!running) return;
      child.stdin!.end();
      const timer = setTimeout(() => {
        killQuietly(pid, 'SIGKILL');
        killQuietly(wrapperPid, 'SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
