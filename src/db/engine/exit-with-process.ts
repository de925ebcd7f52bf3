import type { ChildProcess } from 'node:child_process';

/** Servers this process started and has not stopped yet. */
const running = new Set<ChildProcess>();

/**
 * A server started here ends when this process does, also when it ends by an uncaught error:
 * an orphaned server would keep its port and its files. (The database engines are tethered
 * more strongly, see tether.ts; this serves helpers such as the test Dovecot.)
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
