import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { resolveDatabase, type DatabaseServer } from '../../src/db/embedded.ts';

/**
 * Which database engines a benchmark runs on, and how it starts each one.
 *
 * - MONGODB_URI set: that server only; each run uses databases of its own, dropped afterwards.
 * - HELPGATE_ENGINE=postgresql|sqlite|mongod: that engine only, in a temporary folder.
 * - Neither: the embedded default, then FerretDB on SQLite, side by side.
 */
export type EngineChoice = { name: 'external'; uri: string } | { name: 'default' } | { name: ForcedEngine };

const FORCEABLE = ['postgresql', 'sqlite', 'mongod'] as const;
type ForcedEngine = (typeof FORCEABLE)[number];

export class EngineChoiceError extends Error {}

export function enginesFromEnv(env: NodeJS.ProcessEnv = process.env): EngineChoice[] {
  if (env.MONGODB_URI) return [{ name: 'external', uri: env.MONGODB_URI }];
  const forced = env.HELPGATE_ENGINE;
  if (forced) {
    if (!FORCEABLE.includes(forced as ForcedEngine)) throw new EngineChoiceError(`HELPGATE_ENGINE must be one of ${FORCEABLE.join(', ')}, got "${forced}"`);
    return [{ name: forced as ForcedEngine }];
  }
  return [{ name: 'default' }, { name: 'sqlite' }];
}

export interface BenchDatabase {
  /** The choice this was started for: default, sqlite, postgresql, mongod or external. */
  readonly name: string;
  /** What it is, e.g. "FerretDB 1.24.2 on PostgreSQL 15". */
  readonly label: string;
  readonly server: DatabaseServer;
  /** A fresh database name for one part of a run (dropped by stop() on an external server). */
  dbName(part: string): string;
  stop(): Promise<void>;
}

/** Starts (or, for an external server, connects to) the engine of `choice`, its files under `dataDir`. */
export async function startEngine(choice: EngineChoice, dataDir: string, toolsDir: string): Promise<BenchDatabase> {
  const server = await resolveDatabase({
    dataDir,
    toolsDir,
    ...(choice.name === 'external' ? { mongodbUri: choice.uri } : {}),
    ...(choice.name !== 'external' && choice.name !== 'default' ? { engine: choice.name } : {}),
  });
  const prefix = `helpgate_bench_${randomBytes(3).toString('hex')}`;
  const used: string[] = [];
  const dropUsed = async () => {
    const client = await mongoose.mongo.MongoClient.connect(server.uri);
    try {
      for (const name of used) await client.db(name).dropDatabase();
    } finally {
      await client.close();
    }
  };
  try {
    const label = server.engine === 'external' ? `${server.label} (${await serverVersion(server.uri)})` : server.label;
    return {
      name: choice.name,
      label,
      server,
      dbName(part) {
        const name = `${prefix}_${part}`;
        used.push(name);
        return name;
      },
      stop: async () => {
        if (server.engine === 'external') await dropUsed();
        await server.stop();
      },
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

async function serverVersion(uri: string): Promise<string> {
  const client = await mongoose.mongo.MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    const info = (await client.db('admin').command({ buildInfo: 1 })) as { version?: string; ferretdbVersion?: string };
    return info.ferretdbVersion ? `FerretDB ${info.ferretdbVersion}` : `MongoDB ${info.version ?? '?'}`;
  } finally {
    await client.close();
  }
}
