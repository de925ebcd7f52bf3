import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/config/load.ts';
import { resolveDatabase, type DatabaseServer } from '../../src/db/embedded.ts';

export interface TestDatabase {
  server: DatabaseServer;
  uri: string;
  /** A database of its own for each test file, so files run in parallel. */
  dbName: string;
  /** Kills the server (not for a shared MONGODB_URI). */
  stop(): Promise<void>;
  /** Starts it again on the same port and files. */
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

export function uniqueDbName(prefix = 'test'): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/**
 * A real MongoDB-protocol server for a test file: MONGODB_URI when set (and `own` is not
 * asked for); otherwise mongod or FerretDB started in a throwaway folder, as helpgate itself
 * starts them.
 */
export async function startTestDatabase(opts: { own?: boolean } = {}): Promise<TestDatabase> {
  const dbName = uniqueDbName();
  if (process.env.MONGODB_URI && !opts.own) {
    const uri = process.env.MONGODB_URI;
    const server: DatabaseServer = { uri, engine: 'external', port: 0, stop: async () => {} };
    const noop = async () => {};
    return { server, uri, dbName, stop: noop, restart: noop, cleanup: noop };
  }
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-db-'));
  const toolsDir = process.env.HELPGATE_TOOLS_DIR ?? path.join(projectRoot, '.tools');
  let server = await resolveDatabase({ dataDir, toolsDir });
  const port = server.port;
  const handle: TestDatabase = {
    get server() {
      return server;
    },
    uri: server.uri,
    dbName,
    stop: () => server.stop(),
    restart: async () => {
      server = await resolveDatabase({ dataDir, toolsDir, port, engine: server.engine === 'mongod' ? 'mongod' : 'ferretdb' });
    },
    cleanup: async () => {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return handle;
}
