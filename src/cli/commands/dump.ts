import { createInterface } from 'node:readline';
import mongoose from 'mongoose';
import type { Config } from '../../config/load.ts';
import { HelpgateError } from '../../errors/errors.ts';
import { openCliStore } from '../db-access.ts';
import { UsageError } from '../usage.ts';

/** Extended JSON of the driver's own BSON library: ObjectId, Date, Binary, Long survive the trip. */
const { EJSON } = mongoose.mongo.BSON;

/** One line of a dump: a document and the collection it belongs to. */
interface DumpLine {
  collection: string;
  document: Record<string, unknown>;
}

/**
 * `helpgate export > dump.jsonl`: every collection of the database, one document per line,
 * in canonical Extended JSON. With `helpgate import` it moves a helpdesk between engines.
 */
export async function exportCommand(args: string[], config: Config): Promise<number> {
  if (args.length) throw new UsageError(`export: unexpected argument "${args[0]}"`);
  const session = await openCliStore(config);
  try {
    const db = session.store.conn.db!;
    const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).filter((n) => !n.startsWith('system.')).sort();
    let count = 0;
    for (const collection of names) {
      for await (const document of db.collection(collection).find({}).sort({ _id: 1 })) {
        const line = `${EJSON.stringify({ collection, document } satisfies DumpLine, { relaxed: false })}\n`;
        if (!process.stdout.write(line)) await new Promise((r) => process.stdout.once('drain', r));
        count++;
      }
    }
    process.stderr.write(`exported ${count} document(s) from ${names.length} collection(s) (${session.database.label})\n`);
    return 0;
  } finally {
    await session.close();
  }
}

const BATCH = 500;

/** `helpgate import < dump.jsonl`: into an empty database only, so nothing is merged by accident. */
export async function importCommand(args: string[], config: Config): Promise<number> {
  if (args.length) throw new UsageError(`import: unexpected argument "${args[0]}"`);
  const session = await openCliStore(config);
  try {
    const db = session.store.conn.db!;
    for (const { name } of await db.listCollections({}, { nameOnly: true }).toArray()) {
      if (await db.collection(name).findOne({})) throw new HelpgateError('import_not_empty', `import: the database already holds data (collection ${name}); import into an empty data folder or database`);
    }
    const pending = new Map<string, Record<string, unknown>[]>();
    let count = 0;
    const flush = async (collection: string) => {
      const docs = pending.get(collection);
      if (!docs?.length) return;
      pending.set(collection, []);
      await db.collection(collection).insertMany(docs, { writeConcern: { w: 'majority', journal: true } });
      count += docs.length;
    };
    let lineNo = 0;
    for await (const text of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
      lineNo++;
      if (!text.trim()) continue;
      let line: DumpLine;
      try {
        line = EJSON.parse(text, { relaxed: false }) as DumpLine;
      } catch (err) {
        throw new HelpgateError('import_bad_line', `import: line ${lineNo} is not Extended JSON: ${(err as Error).message}`);
      }
      if (typeof line.collection !== 'string' || typeof line.document !== 'object') throw new HelpgateError('import_bad_line', `import: line ${lineNo} has no collection and document`);
      const docs = pending.get(line.collection) ?? [];
      docs.push(line.document);
      pending.set(line.collection, docs);
      if (docs.length >= BATCH) await flush(line.collection);
    }
    for (const collection of pending.keys()) await flush(collection);
    process.stderr.write(`imported ${count} document(s) (${session.database.label})\n`);
    return 0;
  } finally {
    await session.close();
  }
}
