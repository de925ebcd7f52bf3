/**
 * `npm run bench:cli [-- --runs N]`: how long one `helpgate` command takes as a whole process,
 * as an MTA pipe (`helpgate ingest`) or an operator (`helpgate tickets list`) runs it, against
 * a running helpgate on the embedded engine. Each command is timed from the build (dist/) and
 * from the sources through tsx (HELPGATE_FROM_SOURCE=1), alternately, so both see the same
 * machine; it prints min / median / max and the ratio. Targets: ingest and tickets list < 1 s.
 * It never fails on a figure, only on an error.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/config/load.ts';
import { embeddedHelpgate } from '../helpers/engine-process.ts';
import { testEnv } from '../helpers/helpgate.ts';

const CLI = path.join(projectRoot, 'src/cli/helpgate.mjs');
const TARGET_MS = 1000;

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench:cli: --${name} must be a positive integer\n`);
    process.exit(2);
  }
  return n;
}

interface Run {
  ms: number;
  from: string;
}

function runOnce(args: string[], env: NodeJS.ProcessEnv, stdin: Buffer | null): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (code !== 0) return reject(new Error(`helpgate ${args.join(' ')} exited ${code}: ${stderr}`));
      resolve({ ms, from: env.HELPGATE_FROM_SOURCE === '1' ? 'sources' : 'dist' });
    });
    child.stdin.end(stdin ?? undefined);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  const runs = flag('runs', 7);
  if (!existsSync(path.join(projectRoot, 'dist', '.built'))) {
    process.stderr.write('bench:cli: dist/ is not built: run `npm run build` first\n');
    process.exit(2);
  }
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-bench-cli-'));
  const server = embeddedHelpgate(dataDir);
  const mail = readFileSync(path.join(projectRoot, 'test/fixtures/new-request-via-pipe.eml'));
  try {
    await server.start(300_000);
    const { MONGODB_URI: _ignored, ...inherited } = process.env;
    const base = { ...inherited, ...testEnv({ LOG_LEVEL: 'warn' }), HELPGATE_DATA_DIR: dataDir } as NodeJS.ProcessEnv;
    const commands: { name: string; args: string[]; stdin: Buffer | null }[] = [
      { name: 'helpgate ingest (one mail, as a pipe)', args: ['ingest', '-f', 'researcher@example.org', 'help@helpdesk.localhost'], stdin: mail },
      { name: 'helpgate tickets list', args: ['tickets', 'list'], stdin: null },
      { name: 'helpgate help (no database)', args: ['help'], stdin: null },
    ];
    console.log(`helpgate CLI benchmark: ${runs} runs per command and build, alternating; node ${process.version}, ${os.cpus().length} CPUs\n`);
    const verdicts: string[] = [];
    for (const c of commands) {
      const times: Record<string, number[]> = { dist: [], sources: [] };
      for (let i = 0; i < runs; i++) {
        for (const from of ['dist', 'sources']) {
          const env = { ...base, HELPGATE_FROM_SOURCE: from === 'sources' ? '1' : '0' };
          const r = await runOnce(c.args, env, c.stdin);
          times[r.from]!.push(r.ms);
        }
      }
      const d = times.dist!;
      const s = times.sources!;
      console.log(`${c.name}`);
      for (const [label, xs] of [['dist/ (built)', d], ['sources (tsx)', s]] as const) {
        console.log(`  ${label.padEnd(15)} min ${fmt(Math.min(...xs))}  median ${fmt(median(xs))}  max ${fmt(Math.max(...xs))}`);
      }
      console.log(`  built / sources median ratio ${(median(d) / median(s)).toFixed(2)}\n`);
      if (c.args[0] !== 'help') verdicts.push(`  ${c.name.padEnd(40)} < 1 s: ${fmt(median(d))} median from dist/ — ${median(d) < TARGET_MS ? 'met' : `MISSED by ${fmt(median(d) - TARGET_MS)}`}`);
    }
    console.log('targets');
    for (const v of verdicts) console.log(v);
  } finally {
    await server.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
