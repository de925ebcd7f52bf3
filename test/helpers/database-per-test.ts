import type { TestFn } from 'ava';
import { startTestDatabase, uniqueDbName, type TestDatabase } from './database.ts';

/**
 * One database server for a test file and a database of its own for each test on it: the
 * tests of the file stay independent (and may run concurrently) without one server each.
 * The server is started on first use and removed after the file's last test.
 */
export function databasePerTest(test: TestFn): () => Promise<TestDatabase> {
  let shared: Promise<TestDatabase> | null = null;
  test.after.always(async () => {
    if (shared) await (await shared).cleanup();
  });
  return async () => {
    shared ??= startTestDatabase();
    const db = await shared;
    const keep = async () => {};
    return { server: db.server, uri: db.uri, dbName: uniqueDbName(), stop: keep, restart: keep, cleanup: keep };
  };
}
