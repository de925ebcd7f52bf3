#!/usr/bin/env node
// The `helpgate` command. helpgate is written in TypeScript; `npm install` compiles it into
// dist/ (npm run build), which starts in a fraction of the time tsx needs to compile the
// sources at every run (an MTA pipes each mail to `helpgate ingest`). When dist/ is missing
// or older than the sources (a developer's edit, a checkout without a build), the sources run
// through tsx, which is always right, only slower. HELPGATE_FROM_SOURCE=1 forces that;
// HELPGATE_REQUIRE_BUILD=1 (set in the container image) refuses to run without a current build.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const stamp = path.join(root, 'dist', '.built');

/** The newest modification time of the TypeScript sources, or Infinity if they cannot be read. */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function builtIsCurrent() {
  if (process.env.HELPGATE_FROM_SOURCE === '1') return false;
  let built;
  try {
    built = statSync(stamp).mtimeMs;
  } catch {
    return false;
  }
  try {
    return newestSource(path.join(root, 'src')) <= built;
  } catch {
    // An image with dist/ only (no sources beside it) runs what it was built with.
    return true;
  }
}

let main;
if (builtIsCurrent()) {
  ({ main } = await import(pathToFileURL(path.join(root, 'dist', 'cli', 'main.js')).href));
  process.env.HELPGATE_RUNNING_FROM = 'dist';
} else if (process.env.HELPGATE_REQUIRE_BUILD === '1') {
  process.stderr.write('helpgate: dist/ is missing or older than the sources, and HELPGATE_REQUIRE_BUILD=1: run `npm run build`\n');
  // An MTA keeps a piped mail and retries on 75 (EX_TEMPFAIL).
  process.exit(process.argv[2] === 'ingest' ? 75 : 1);
} else {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write('helpgate: dist/ is missing or older than the sources, and tsx (a dev dependency) is not installed to run them: run `npm install` and `npm run build`\n');
    process.exit(process.argv[2] === 'ingest' ? 75 : 1);
  }
  register();
  ({ main } = await import('./main.ts'));
  process.env.HELPGATE_RUNNING_FROM = 'sources';
}
process.exitCode = await main(process.argv.slice(2));
