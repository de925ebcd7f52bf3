// ava's configuration. The longest test files start first, so that on a small machine they
// run beside the many short ones instead of after them.
const FIRST = ['imap-crash', 'crash', 'timers', 'cli', 'portal-agents'];
const rank = (file) => {
  const name = file.split('/').pop().replace(/\.test\.ts$/, '');
  const i = FIRST.indexOf(name);
  return i === -1 ? FIRST.length : i;
};

export default {
  files: ['test/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '120s',
  concurrency: 2,
  sortTestFiles: (a, b) => rank(a) - rank(b) || a.localeCompare(b),
};
