export type EmbeddedEngine = 'mongod' | 'postgresql' | 'sqlite';
export type Engine = 'external' | EmbeddedEngine;

export interface DatabaseServer {
  readonly uri: string;
  readonly engine: Engine;
  readonly port: number;
  /** What runs, for people: "FerretDB 1.24.2 on PostgreSQL 15.18". */
  readonly label: string;
  /** Stops the engine this process started (no-op for an external or borrowed one). */
  stop(): Promise<void>;
}

export interface ResolveOptions {
  /** A server to use as it is; wins over everything else. */
  mongodbUri?: string | undefined;
  dataDir: string;
  toolsDir: string;
  /** Use this engine instead of the default order (MONGODB_URI → mongod → PostgreSQL → SQLite). */
  engine?: EmbeddedEngine | undefined;
  /** Pin the MongoDB-protocol port of a new data folder (later starts use the recorded one). */
  port?: number;
  log?: (line: string) => void;
  /** How long a dead engine child may stay down before giving up; default 60 s. */
  restartWithinMs?: number;
  /** Called once when an engine child could not be brought back in time. */
  onGiveUp?: (err: Error) => void;
}
