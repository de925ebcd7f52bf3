import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../../src/config/load.ts';

const CLI = path.join(projectRoot, 'src/cli/helpgate.mjs');

/**
 * `helpgate serve` as a real child process, as an operator runs it: it can be killed with
 * any signal and started again. The SMTP port is read from the banner it prints.
 */
export class HelpgateProcess {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  /** The last few kilobytes of the child's stdout and stderr, for failure messages. */
  output = '';
  smtpPort = 0;

  constructor(private readonly env: Record<string, string | undefined>) {}

  /** Starts `helpgate serve` and resolves once its banner names the SMTP port. */
  async start(timeoutMs = 60_000): Promise<number> {
    if (this.running) throw new Error('helpgate is already running');
    const child = spawn(process.execPath, [CLI, 'serve'], { env: this.env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-8000);
    };
    child.stderr!.on('data', keep);
    this.smtpPort = await new Promise<number>((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(() => fail(new Error(`helpgate printed no banner within ${timeoutMs} ms`)), timeoutMs);
      const onData = (d: Buffer) => {
        keep(d);
        stdout += d.toString();
        const m = /SMTP intake\s+smtp:\/\/[^\s:]+:(\d+)/.exec(stdout);
        if (m) {
          clearTimeout(timer);
          child.off('exit', onExit);
          child.stdout!.off('data', onData);
          child.stdout!.on('data', keep);
          resolve(Number(m[1]));
        }
      };
      const onExit = (code: number | null, signal: string | null) => fail(new Error(`helpgate exited (${code ?? signal}) before its banner`));
      const fail = (err: Error) => {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        reject(new Error(`${err.message}:\n${this.output}`));
      };
      child.stdout!.on('data', onData);
      child.once('exit', onExit);
    });
    return this.smtpPort;
  }

  /** The process id of the running helpgate (0 when not running). */
  get pid(): number {
    return this.running ? this.child!.pid ?? 0 : 0;
  }

  /** The exit code once it has exited by itself (null while running, or when killed by a signal). */
  get exitCode(): number | null {
    return this.child?.exitCode ?? null;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends `signal` and waits until the process is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.running) this.child!.kill(signal);
    await this.exited;
  }
}
