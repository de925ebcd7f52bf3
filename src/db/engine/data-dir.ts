import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { EmbeddedEngine } from './types.ts';

/**
 * What a data folder records about its embedded engine, so that every later start and
 * every CLI command finds the same engine at the same address.
 */
export interface EngineRecord {
  engine: EmbeddedEngine;
  /** The MongoDB-protocol port (FerretDB or mongod), chosen once. */
  port: number;
  /** The private PostgreSQL cluster's port, chosen once. */
  pgPort?: number;
}

const recordFile = (dataDir: string) => path.join(dataDir, 'engine.json');

export function readEngineRecord(dataDir: string): EngineRecord | null {
  const file = recordFile(dataDir);
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as EngineRecord;
}

export function writeEngineRecord(dataDir: string, record: EngineRecord): void {
  writeAtomically(recordFile(dataDir), `${JSON.stringify(record, null, 2)}\n`);
}

/** The engine whose files are in this folder: the record, or for folders made before it, the files. */
export function engineHoldingDir(dataDir: string): EmbeddedEngine | null {
  const recorded = readEngineRecord(dataDir);
  if (recorded) return recorded.engine;
  if (existsSync(path.join(dataDir, 'postgres', 'PG_VERSION'))) return 'postgresql';
  const has = (sub: string) => existsSync(path.join(dataDir, sub)) && readdirSync(path.join(dataDir, sub)).length > 0;
  if (has('mongod')) return 'mongod';
  if (has('ferretdb') && readdirSync(path.join(dataDir, 'ferretdb')).some((f) => f.endsWith('.sqlite'))) return 'sqlite';
  return null;
}

export function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export function removeQuietly(file: string): void {
  rmSync(file, { force: true });
}
