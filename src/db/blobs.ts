import { createHash } from 'node:crypto';
import type { Model } from 'mongoose';
import { insertManyOnce } from './coordination/index.ts';

/** 1 MiB chunks keep documents small on every engine (some store documents as JSON text). */
export const BLOB_CHUNK_SIZE = 1024 * 1024;

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Content-addressed storage for raw messages and attachments. Writing the same bytes twice
 * is harmless (the chunks' ids are their hash and position), which makes redelivery and
 * re-ingest idempotent.
 */
export class BlobStore {
  constructor(private readonly chunks: Model<any>) {}

  async put(data: Buffer): Promise<string> {
    return (await this.putMany([data]))[0]!;
  }

  /** Stores several blobs in one insertMany (the driver splits it only past its message size); returns their hashes in order. */
  async putMany(blobs: readonly Buffer[]): Promise<string[]> {
    const shas: string[] = [];
    const docs = new Map<string, { _id: string; sha: string; n: number; data: Buffer }>();
    for (const data of blobs) {
      const sha = sha256(data);
      shas.push(sha);
      const count = Math.max(1, Math.ceil(data.length / BLOB_CHUNK_SIZE));
      for (let n = 0; n < count; n++) {
        const _id = `${sha}/${n}`;
        docs.set(_id, { _id, sha, n, data: data.subarray(n * BLOB_CHUNK_SIZE, (n + 1) * BLOB_CHUNK_SIZE) });
      }
    }
    // Chunks stored before (the same bytes again) are skipped.
    await insertManyOnce(this.chunks, [...docs.values()]);
    return shas;
  }

  async get(sha: string): Promise<Buffer | null> {
    // Chunk by chunk, by _id: a filter on `sha` would scan every stored chunk of every blob on
    // an engine without secondary indexes (see db/coordination).
    const parts: Buffer[] = [];
    for (let n = 0; ; n++) {
      const doc = await this.chunks.collection.findOne({ _id: `${sha}/${n}` } as never);
      if (!doc) break;
      const part = toBuffer(doc.data);
      parts.push(part);
      if (part.length < BLOB_CHUNK_SIZE) break; // only the last chunk is short
    }
    if (parts.length === 0) return null;
    const data = Buffer.concat(parts);
    if (sha256(data) !== sha) throw new Error(`blob ${sha} is incomplete or corrupt`);
    return data;
  }

  /**
   * Deletes the chunks of a blob, by _id (see get). `sizeHint` (the blob's size, when known)
   * says how many chunks to expect; chunks past it are deleted while there are any. Whether
   * anything else still uses the blob is the caller's question (db/blob-references.ts).
   */
  async delete(sha: string, sizeHint = 0): Promise<number> {
    const expected = Math.max(1, Math.ceil(sizeHint / BLOB_CHUNK_SIZE));
    let deleted = 0;
    for (let n = 0; ; n++) {
      const res = await this.chunks.collection.deleteOne({ _id: `${sha}/${n}` } as never);
      deleted += res.deletedCount ?? 0;
      // Past the expected count, the first missing chunk ends the blob (a run stopped half-way
      // may have deleted the first chunks already: those are why the expected ones are all tried).
      if (n + 1 >= expected && !res.deletedCount) break;
    }
    return deleted;
  }
}

/** The driver returns BSON Binary for buffers read without mongoose casting. */
export function toBuffer(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  const v = value as { buffer?: ArrayBufferLike | Uint8Array; value?: (asRaw?: boolean) => Uint8Array };
  if (v && v.buffer instanceof Uint8Array) return Buffer.from(v.buffer);
  if (v && v.buffer) return Buffer.from(v.buffer as ArrayBuffer);
  throw new TypeError('not binary data');
}
