import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/load.ts';
import { resolveDatabase, type DatabaseServer } from '../db/embedded.ts';
import { openStore, type Store } from '../db/store.ts';
import { createDomainContext, type DomainContext } from '../domain/context.ts';
import { createLogger } from '../log/logger.ts';
import { projectRoot } from '../config/load.ts';
import { MailComposer } from '../mail/send/compose.ts';
import { runtimeFile } from '../main.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The database for a CLI command: MONGODB_URI; else the one a running `helpgate serve`
 * uses (it writes its address to the data folder); else an embedded server started just for
 * this command on the same data folder.
 */
export async function cliDatabase(config: Config): Promise<DatabaseServer> {
  if (!config.mongodbUri) {
    const file = runtimeFile(config);
    if (existsSync(file)) {
      const info = JSON.parse(readFileSync(file, 'utf8')) as { pid: number; uri: string; engine: 'mongod' | 'ferretdb' };
      if (isAlive(info.pid)) {
        const port = Number(new URL(info.uri.replace(/^mongodb:/, 'http:')).port);
        return { uri: info.uri, engine: info.engine, port, stop: async () => {} };
      }
    }
  }
  return resolveDatabase({ mongodbUri: config.mongodbUri, dataDir: config.dataDir, toolsDir: config.toolsDir });
}

export interface CliSession {
  store: Store;
  ctx: DomainContext;
  close(): Promise<void>;
}

export async function openCliSession(config: Config): Promise<CliSession> {
  const db = await cliDatabase(config);
  let store: Store;
  try {
    store = await openStore(db.uri, { timeoutMs: config.mongodbTimeoutMs });
  } catch (err) {
    await db.stop();
    throw err;
  }
  const ctx = createDomainContext({ store, config, log: createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel), composer: new MailComposer(path.join(projectRoot, 'templates')) });
  return {
    store,
    ctx,
    close: async () => {
      await store.close();
      await db.stop();
    },
  };
}
