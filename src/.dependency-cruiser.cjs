// Import rules of helpgate (see the architecture section of README.md):
//   receive (mail/receive) → domain → store (db) / send (mail/send); http → domain;
//   config, log, errors, jobs at the bottom; main.ts and cli/ wire everything.
//   dev-aai (the dev LS AAI stand-in) stands beside them: config, log and errors only.
// `npm test` fails on any violation and on any import cycle.
/** @type {import('dependency-cruiser').IConfiguration} */
const layer = (name, from, forbidden) => ({
  name,
  severity: 'error',
  from: { path: from },
  to: { path: forbidden },
});

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'Import cycles are not allowed.', from: {}, to: { circular: true } },
    layer('bottom-imports-nothing', '^src/(config|log|errors|jobs)/', '^src/(db|domain|mail|http|cli|main\\.ts)'),
    layer('db-below-domain-and-mail', '^src/db/', '^src/(domain|mail|http|cli|main\\.ts)'),
    layer('parse-is-pure', '^src/mail/parse/', '^src/(db|domain|mail/receive|mail/send|http|cli|main\\.ts)'),
    layer('auth-is-pure', '^src/mail/auth/', '^src/(db|domain|mail/receive|mail/send|http|cli|main\\.ts)'),
    layer('receive-only-stores', '^src/mail/receive/', '^src/(domain|mail/send|http|cli|main\\.ts)'),
    layer('send-never-imports-domain', '^src/mail/send/', '^src/(domain|mail/receive|http|cli|main\\.ts)'),
    layer('domain-below-protocols', '^src/domain/', '^src/(mail/receive|http|cli|main\\.ts)'),
    layer('http-calls-domain-not-db', '^src/http/', '^src/(db|mail/receive|mail/send|cli|main\\.ts)'),
    layer('dev-aai-stands-alone', '^src/dev-aai/', '^src/(db|domain|jobs|mail|http|cli|main\\.ts)'),
    {
      name: 'dev-aai-only-from-wiring',
      severity: 'error',
      comment: 'The dev LS AAI stand-in is started by main.ts or the CLI; nothing else may depend on it.',
      from: { path: '^src/', pathNot: '^src/(dev-aai/|cli/|main\\.ts$)' },
      to: { path: '^src/dev-aai/' },
    },
    { name: 'not-to-unresolvable', severity: 'error', from: {}, to: { couldNotResolve: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
