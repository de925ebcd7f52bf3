import { Schema, type Connection } from 'mongoose';

/** Message-ID → ticket, for threading by In-Reply-To/References (ours and the participants'). */
export const threadIdSchema = new Schema(
  {
    _id: { type: String, required: true },
    ticketId: { type: Schema.Types.ObjectId, required: true },
    ticketNumber: { type: Number, required: true },
    /** true for Message-IDs we generated: such a mail coming back to us is a loop. */
    ours: { type: Boolean, default: false },
  },
  { collection: 'threadids', versionKey: false },
);

/** Leases (see db/coordination/lease.ts): "<resource>@<slot>". */
export const lockSchema = new Schema(
  { _id: { type: String, required: true }, owner: { type: String, required: true }, expiresAt: { type: Date, required: true } },
  { collection: 'locks', versionKey: false },
);
lockSchema.index({ expiresAt: 1 });

/** Fixed-window rate limits, one document per counted event (see db/coordination/window.ts); ended windows are swept. */
export const rateWindowSchema = new Schema(
  { _id: { type: String, required: true }, n: { type: Number, default: 0 }, windowEnd: { type: Date, required: true } },
  { collection: 'ratewindows', versionKey: false },
);
rateWindowSchema.index({ windowEnd: 1 });

/** Content-addressed chunks of raw messages and attachments: _id "<sha256>/<n>". */
export const blobChunkSchema = new Schema(
  { _id: { type: String, required: true }, sha: { type: String, required: true }, n: { type: Number, required: true }, data: { type: Buffer, required: true } },
  { collection: 'blobchunks', versionKey: false },
);
blobChunkSchema.index({ sha: 1, n: 1 });

/**
 * A work queue beside a collection of items (inbox, outbox): one small entry per item that
 * still needs work, _id = the item's _id, due = when it may next be claimed; beside them the
 * claims on those entries (db/coordination/work-queue.ts). Entries are deleted when the work
 * is done, so finding due work reads the backlog, not the history.
 */
export const queueEntrySchema = new Schema(
  { _id: { type: Schema.Types.ObjectId, required: true }, due: { type: Date, required: true }, since: { type: Date, required: true } },
  { versionKey: false },
);
queueEntrySchema.index({ due: 1 });
queueEntrySchema.index({ entry: 1 });

export const threadIdModel = (conn: Connection) => conn.model('ThreadId', threadIdSchema);
export const lockModel = (conn: Connection) => conn.model('Lock', lockSchema);
export const rateWindowModel = (conn: Connection) => conn.model('RateWindow', rateWindowSchema);
export const blobChunkModel = (conn: Connection) => conn.model('BlobChunk', blobChunkSchema);
export const queueModel = (conn: Connection, name: 'InboxQueue' | 'OutboxQueue') =>
  conn.model(name, queueEntrySchema.clone().set('collection', name.toLowerCase()));
