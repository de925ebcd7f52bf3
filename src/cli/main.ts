import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, projectRoot, type Config } from '../config/load.ts';
import { ConfigError, HelpgateError, NoDatabaseError, StoreUnavailableError, errorMessage } from '../errors/errors.ts';
import { allowStartingDatabase, START_DATABASE_FLAG } from './db-access.ts';
import { EX_TEMPFAIL, EX_USAGE, USAGE } from './usage.ts';

export type Command = (args: string[], config: Config) => Promise<number>;

/**
 * Each command is loaded when it runs: `helpgate ingest` from an MTA pipe must not pay for the
 * portal, the OpenID Provider and the workers that only `serve` needs.
 */
const commands: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./commands/serve.ts')).serveCommand,
  parse: async () => (await import('./commands/mail.ts')).parseCommand,
  ingest: async () => (await import('./commands/mail.ts')).ingestCommand,
  tickets: async () => (await import('./commands/records.ts')).ticketsCommand,
  outbox: async () => (await import('./commands/records.ts')).outboxCommand,
  inbox: async () => (await import('./commands/records.ts')).inboxCommand,
  status: async () => (await import('./commands/status.ts')).statusCommand,
  export: async () => (await import('./commands/dump.ts')).exportCommand,
  import: async () => (await import('./commands/dump.ts')).importCommand,
  gdpr: async () => (await import('./commands/gdpr.ts')).gdprCommand,
  tools: async () => (await import('./commands/tools.ts')).toolsCommand,
  dkim: async () => (await import('./commands/dkim.ts')).dkimCommand,
  'dev-aai': async () => (await import('./commands/dev-aai.ts')).devAaiCommand,
};

/** Commands that print records; each has done its work before it prints. */
const PRINTERS = new Set(['parse', 'tickets', 'outbox', 'inbox', 'status', 'dkim']);

/** Commands that use a database and may be allowed to start the data folder's engine. */
const DATABASE_COMMANDS = new Set(['ingest', 'tickets', 'outbox', 'inbox', 'status', 'export', 'import', 'gdpr', 'dkim']);

/**
 * `helpgate tickets list | head`: once the reader has what it wants it closes the pipe, and the
 * next write fails with EPIPE. Such a command stops quietly, as Unix tools do, instead of
 * dying with a stack trace. Not for `ingest` (an MTA must never read a success it did not
 * get) nor the long-running `serve`.
 */
function stopQuietlyWhenReaderLeaves(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(0);
  });
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...given] = argv;
  const args = given.filter((a) => a !== START_DATABASE_FLAG);
  if (args.length !== given.length) {
    if (!name || !DATABASE_COMMANDS.has(name)) {
      process.stderr.write(`helpgate: ${START_DATABASE_FLAG} is for commands that use the database\n\n${USAGE}\n`);
      return EX_USAGE;
    }
    allowStartingDatabase();
  }
  if (name && PRINTERS.has(name)) stopQuietlyWhenReaderLeaves();
  if (name === 'version' || name === '--version') {
    // Which code runs: the build (dist/) or the sources through tsx (see helpgate.mjs).
    const { version } = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`helpgate ${version} (running from ${process.env.HELPGATE_RUNNING_FROM ?? 'sources'})\n`);
    return 0;
  }
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return name ? 0 : EX_USAGE;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`helpgate: unknown command "${name}"\n\n${USAGE}\n`);
    return EX_USAGE;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`helpgate: invalid configuration: ${err.message}\n`);
      return name === 'ingest' ? EX_TEMPFAIL : 1;
    }
    throw err;
  }
  try {
    const command = await load();
    return await command(args, config);
  } catch (err) {
    if (err instanceof StoreUnavailableError || err instanceof NoDatabaseError) {
      process.stderr.write(`helpgate: ${err.message}\n`);
      return name === 'ingest' ? EX_TEMPFAIL : 1;
    }
    if (err instanceof HelpgateError) {
      process.stderr.write(`helpgate: ${err.message}\n`);
      return err.code === 'usage' ? EX_USAGE : 1;
    }
    process.stderr.write(`helpgate: ${errorMessage(err)}\n`);
    return name === 'ingest' ? EX_TEMPFAIL : 1;
  }
}
