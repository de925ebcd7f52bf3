import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/config/load.ts';
import { resolveDatabase, type DatabaseServer, type EmbeddedEngine } from '../../src/db/embedded.ts';

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

/** The engine the tests run on: HELPGATE_ENGINE when set, else helpgate's default order. */
export function testEngine(): EmbeddedEngine | undefined {
  const e = process.env.HELPGATE_ENGINE;
  return e === 'postgresql' || e === 'sqlite' || e === 'mongod' ? e : undefined;
}

/**
 * A throwaway data folder. Searchable by others (not listable): a root test run starts
 * PostgreSQL as `nobody`, which must reach the cluster inside.
 */
export function tempDataDir(prefix = 'helpgate-db-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dir, 0o711);
  return dir;
}

export const testToolsDir = () => process.env.HELPGATE_TOOLS_DIR ?? path.join(projectRoot, '.tools');

/**
 * A real MongoDB-protocol server for a test file: MONGODB_URI when set (and `own` is not
 * asked for); otherwise the embedded engine started in a throwaway folder, as helpgate itself
 * starts it (HELPGATE_ENGINE chooses one).
 */
export async function startTestDatabase(opts: { own?: boolean } = {}): Promise<TestDatabase> {
  const dbName = uniqueDbName();
  if (process.env.MONGODB_URI && !opts.own) {
    const uri = process.env.MONGODB_URI;
    const server: DatabaseServer = { uri, engine: 'external', port: 0, label: 'MongoDB (MONGODB_URI)', stop: async () => {} };
    const noop = async () => {};
    return { server, uri, dbName, stop: noop, restart: noop, cleanup: noop };
  }
  const dataDir = tempDataDir();
  const toolsDir = testToolsDir();
  let server = await resolveDatabase({ dataDir, toolsDir, engine: testEngine() });
  const handle: TestDatabase = {
    get server() {
      return server;
    },
    uri: server.uri,
    dbName,
    stop: () => server.stop(),
    restart: async () => {
      // The data folder records its engine and port: the same server comes back at the same address.
      server = await resolveDatabase({ dataDir, toolsDir });
    },
    cleanup: async () => {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return handle;
}
