/**
 * One starter racing others for a data folder's lock (test/engine-lock.test.ts).
 * Usage: engine-lock-child.ts <dataDir>. Prints "ready", waits for "go" on stdin (so that all
 * start together), tries to take the lock and prints one JSON line: {"won":true} or the
 * error. A winner holds the lock until its stdin ends.
 */
import { createInterface } from 'node:readline';
import { acquireLock } from '../../src/db/engine/lock.ts';

const dataDir = process.argv[2]!;
const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
try {
  const lock = await acquireLock(dataDir);
  process.stdout.write(`${JSON.stringify({ won: true })}\n`);
  await new Promise<void>((resolve) => lines.once('close', () => resolve()));
  lock.release();
} catch (err) {
  process.stdout.write(`${JSON.stringify({ won: false, error: (err as Error).message })}\n`);
}
