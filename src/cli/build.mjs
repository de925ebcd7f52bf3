#!/usr/bin/env node
// `npm run build` (also run by `npm install`): compiles src/ into dist/ with tsc, then writes
// dist/.built, which the `helpgate` launcher compares with the sources' times to know whether
// dist/ is current. dist/ is made anew, so a removed source leaves no stale module behind.
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dist = path.join(root, 'dist');
const started = new Date();
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  // A production install (`npm ci --omit=dev`) has no TypeScript: it must bring dist/ built
  // (as the image does). Not an install failure: the launcher says what is missing if it is.
  process.stderr.write('helpgate build: TypeScript is not installed (no dev dependencies): dist/ is left as it is\n');
  process.exit(0);
}
rmSync(dist, { recursive: true, force: true });
const run = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (run.status !== 0) {
  rmSync(dist, { recursive: true, force: true });
  process.stderr.write('helpgate build: tsc failed; `helpgate` runs from the sources (through tsx) until a build succeeds\n');
  process.exit(run.status ?? 1);
}
writeFileSync(path.join(dist, '.built'), `${started.toISOString()}\n`);
// The stamp's time is when the build began: a source saved during the build counts as newer.
const { utimesSync } = await import('node:fs');
utimesSync(path.join(dist, '.built'), started, started);
