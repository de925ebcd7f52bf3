/**
 * The database engine helpgate runs on: the entry point its callers import. The parts live
 * in ./engine/ (choice and start-up, PostgreSQL cluster, lock, supervision, tether).
 */
export { resolveDatabase } from './engine/resolve.ts';
export type { DatabaseServer, EmbeddedEngine, Engine, ResolveOptions } from './engine/types.ts';
export { canConnect, freePort, onPath } from './engine/net.ts';
export { endsWithThisProcess } from './engine/exit-with-process.ts';
export { ferretdbBinary } from './ferretdb-install.ts';
export { liveLock, lockFile, isAlive, type LockContent } from './engine/lock.ts';
export { DataDirInUseError, EngineMismatchError, NoRunningDatabaseError } from './engine/errors.ts';
