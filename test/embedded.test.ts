import test from 'ava';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { loadConfig, projectRoot } from '../src/config/load.ts';
import { canConnect } from '../src/db/embedded.ts';
import { tempDataDir } from './helpers/database.ts';
import { processesUsing } from './helpers/engine-process.ts';
import { until } from './helpers/wait.ts';

test('a process that dies of an uncaught error takes the database server it started with it', async (t) => {
  const dataDir = tempDataDir('helpgate-embedded-');
  t.teardown(() => {
    for (const pid of processesUsing(dataDir)) process.kill(pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  // Starts the embedded engine as `npm start` would, says on which port, then crashes.
  const script = `
    import { resolveDatabase } from './src/db/embedded.ts';
    const db = await resolveDatabase({ dataDir: process.env.DATA_DIR, toolsDir: process.env.TOOLS_DIR, engine: process.env.HELPGATE_ENGINE || undefined });
    process.stdout.write(db.port + '\\n');
    setTimeout(() => { throw new Error('a bug nobody caught'); }, 100);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, TOOLS_DIR: loadConfig({}).toolsDir, HELPGATE_ENGINE: process.env.HELPGATE_ENGINE ?? '' },
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
  await t.notThrowsAsync(until(async () => !(await canConnect(port)), { what: `the database on port ${port} to stop`, timeoutMs: 15_000 }));
  await until(() => processesUsing(dataDir).length === 0, { what: 'every engine process to end', timeoutMs: 15_000 }).catch(() => {});
  t.deepEqual(processesUsing(dataDir), [], 'no engine process (FerretDB, PostgreSQL) outlives it');
});
