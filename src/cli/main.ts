import { loadConfig, type Config } from '../config/load.ts';
import { ConfigError, HelpgateError, NoDatabaseError, StoreUnavailableError, errorMessage } from '../errors/errors.ts';
import { allowStartingDatabase, START_DATABASE_FLAG } from './db-access.ts';
import { devAaiCommand } from './commands/dev-aai.ts';
import { dkimCommand } from './commands/dkim.ts';
import { exportCommand, importCommand } from './commands/dump.ts';
import { ingestCommand, parseCommand } from './commands/mail.ts';
import { inboxCommand, outboxCommand, ticketsCommand } from './commands/records.ts';
import { serveCommand } from './commands/serve.ts';
import { statusCommand } from './commands/status.ts';
import { toolsCommand } from './commands/tools.ts';
import { EX_TEMPFAIL, EX_USAGE, USAGE } from './usage.ts';

export type Command = (args: string[], config: Config) => Promise<number>;

const commands: Record<string, Command> = {
  serve: serveCommand,
  parse: parseCommand,
  ingest: ingestCommand,
  tickets: ticketsCommand,
  outbox: outboxCommand,
  inbox: inboxCommand,
  status: statusCommand,
  export: exportCommand,
  import: importCommand,
  tools: toolsCommand,
  dkim: dkimCommand,
  'dev-aai': devAaiCommand,
};

/** Commands that print records; each has done its work before it prints. */
const PRINTERS = new Set(['parse', 'tickets', 'outbox', 'inbox', 'status', 'dkim']);

/** Commands that use a database and may be allowed to start the data folder's engine. */
const DATABASE_COMMANDS = new Set(['ingest', 'tickets', 'outbox', 'inbox', 'status', 'export', 'import', 'dkim']);

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
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return name ? 0 : EX_USAGE;
  }
  const command = commands[name];
  if (!command) {
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
