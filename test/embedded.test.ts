import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, projectRoot } from '../src/config/load.ts';
import { canConnect } from '../src/db/embedded.ts';
import { until } from './helpers/wait.ts';

/** Processes whose command line names this port (the database server, if it outlived its parent). */
function pidsListeningOn(port: number): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cmdline.some((arg) => arg.endsWith(`127.0.0.1:${port}`) || arg === String(port))) pids.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

test('a process that dies of an uncaught error takes the database server it started with it', async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-embedded-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  // Starts the embedded engine as `npm start` would, says on which port, then crashes.
  const script = `
    import { resolveDatabase } from './src/db/embedded.ts';
    const db = await resolveDatabase({ dataDir: process.env.DATA_DIR, toolsDir: process.env.TOOLS_DIR });
    process.stdout.write(db.port + '\\n');
    setTimeout(() => { throw new Error('a bug nobody caught'); }, 100);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, TOOLS_DIR: loadConfig({}).toolsDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  t.not(code, 0);
  t.regex(err, /a bug nobody caught/);
  const port = Number(out.trim());
  t.true(port > 0, `the script printed no port: ${out} ${err}`);
  t.teardown(() => {
    for (const pid of pidsListeningOn(port)) process.kill(pid, 'SIGKILL');
  });
  await t.notThrowsAsync(until(async () => !(await canConnect(port)), { what: `the database on port ${port} to stop`, timeoutMs: 15_000 }));
  t.deepEqual(pidsListeningOn(port), []);
});
