import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/load.ts';
import { liveLock, NoRunningDatabaseError, resolveDatabase, type DatabaseServer, type Engine } from '../db/embedded.ts';
import { openStore, type Store } from '../db/store.ts';
import { createDomainContext, type DomainContext } from '../domain/context.ts';
import { createLogger } from '../log/logger.ts';
import { projectRoot } from '../config/load.ts';
import { MailComposer } from '../mail/send/compose.ts';

/** `--start-database`: a command may start the data folder's engine itself when no helpgate runs. */
export const START_DATABASE_FLAG = '--start-database';
const cliOptions = { startDatabase: false };

export function allowStartingDatabase(): void {
  cliOptions.startDatabase = true;
}

/**
 * The database for a CLI command: MONGODB_URI; else the engine of the helpgate running on
 * this data folder, at the address its lock file records (also when that helpgate runs as
 * another user). With no running instance, the command fails saying so, unless it was given
 * --start-database: then it starts the engine itself, under the same lock a `helpgate serve`
 * takes, so the two can never run on the same files, and says on stderr that it did.
 *
 * A command run from another folder, or without the server's HELPGATE_DATA_DIR, looks at
 * another data folder than the server's: it must not quietly show that folder's (empty, or
 * another helpdesk's) tickets. So every message names the folder it looked at, and points at
 * a helpgate running on the default folder when there is one.
 */
export async function cliDatabase(config: Config): Promise<DatabaseServer> {
  if (config.mongodbUri) return resolveDatabase({ mongodbUri: config.mongodbUri, dataDir: config.dataDir, toolsDir: config.toolsDir });
  const running = liveLock(config.dataDir);
  if (running?.uri) {
    const port = Number(new URL(running.uri.replace(/^mongodb:/, 'http:')).port);
    return { uri: running.uri, engine: running.engine as Engine, port, label: `${running.label} (run by helpgate process ${running.pid})`, stop: async () => {} };
  }
  if (running) throw new NoRunningDatabaseError(`helpgate process ${running.pid} is starting the database of ${config.dataDir}; try again in a moment`);
  if (!cliOptions.startDatabase) {
    throw new NoRunningDatabaseError(
      `no helpgate is running on the data folder ${config.dataDir} (HELPGATE_DATA_DIR; when unset, ./data of the folder the command runs in; MONGODB_URI is not set either)${elsewhere(config.dataDir)}: ` +
        `start it (\`helpgate serve\`), run this command with the server's HELPGATE_DATA_DIR, ` +
        `or add ${START_DATABASE_FLAG} to let this command start the database of ${config.dataDir} itself`,
    );
  }
  const fresh = !hasContent(config.dataDir);
  const database = await resolveDatabase({ dataDir: config.dataDir, toolsDir: config.toolsDir, engine: config.engine ?? undefined });
  process.stderr.write(
    `helpgate: no helpgate runs on the data folder ${config.dataDir}: this command started ${fresh ? 'a new, empty' : 'its'} database (${database.label}) ` +
      `for itself and stops it when done${elsewhere(config.dataDir)}\n`,
  );
  return database;
}

function hasContent(dir: string): boolean {
  try {
    return readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

/** "; a helpgate runs on <the default folder>" when one does and it is not the folder looked at. */
function elsewhere(dataDir: string): string {
  const usual = path.join(projectRoot, 'data');
  if (path.resolve(dataDir) === usual) return '';
  let lock: ReturnType<typeof liveLock> = null;
  try {
    lock = liveLock(usual);
  } catch {
    // an unreadable lock file there: no hint, the message about dataDir stands alone
  }
  return lock ? `; a helpgate (process ${lock.pid}) runs on the data folder ${usual}: set HELPGATE_DATA_DIR=${usual} to use it` : '';
}

export interface CliSession {
  store: Store;
  ctx: DomainContext;
  database: DatabaseServer;
  close(): Promise<void>;
}

/** The database and the store, for commands that do not need the domain. */
export async function openCliStore(config: Config): Promise<{ store: Store; database: DatabaseServer; close(): Promise<void> }> {
  const database = await cliDatabase(config);
  let store: Store;
  try {
    store = await openStore(database.uri, { timeoutMs: config.mongodbTimeoutMs });
  } catch (err) {
    await database.stop();
    throw err;
  }
  return {
    store,
    database,
    close: async () => {
      await store.close();
      await database.stop();
    },
  };
}

export async function openCliSession(config: Config): Promise<CliSession> {
  const { store, database, close } = await openCliStore(config);
  const ctx = createDomainContext({ store, config, log: createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel), composer: new MailComposer(path.join(projectRoot, 'templates')) });
  return { store, ctx, database, close };
}
