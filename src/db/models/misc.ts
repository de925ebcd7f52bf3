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

/** Slot locks (see db/claims.ts): "<resource>@<slot>". */
export const lockSchema = new Schema(
  { _id: { type: String, required: true }, owner: { type: String, required: true }, expiresAt: { type: Date, required: true } },
  { collection: 'locks', versionKey: false },
);
lockSchema.index({ expiresAt: 1 });

/** Fixed-window rate limits, one document per permitted event (see domain/rate-limit.ts); old windows are removed by a sweeper (no TTL indexes on FerretDB). */
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
 * Ticket number reservations: _id is the number. A number is taken by inserting its document,
 * atomically on every engine, and looked up by _id (see domain/tickets.ts).
 */
export const ticketNumberSchema = new Schema(
  { _id: { type: Number, required: true }, ticketId: { type: Schema.Types.ObjectId, required: true } },
  { collection: 'ticketnumbers', versionKey: false },
);

/**
 * A work queue beside a collection of items (inbox, outbox): one small entry per item that
 * still needs work, _id = the item's _id, due = when it may next be claimed. Entries are
 * deleted when the work is done, so finding due work reads the backlog, not the history
 * (FerretDB 1.24 decodes a whole collection for any filter other than {_id}).
 */
export const queueEntrySchema = new Schema(
  { _id: { type: Schema.Types.ObjectId, required: true }, due: { type: Date, required: true }, since: { type: Date, required: true } },
  { versionKey: false },
);
queueEntrySchema.index({ due: 1 });

/**
 * The articles of a ticket in order: _id "<ticketId>#<n>", n = 1, 2, … A slot is taken by
 * inserting it, so concurrent writers never share one, and a ticket's page reads its articles
 * by _id (FerretDB 1.24 would decode every article of every ticket for `{ticketId}`).
 */
export const articleRefSchema = new Schema(
  { _id: { type: String, required: true }, articleId: { type: Schema.Types.ObjectId, required: true } },
  { collection: 'articlerefs', versionKey: false },
);

export const threadIdModel = (conn: Connection) => conn.model('ThreadId', threadIdSchema);
export const lockModel = (conn: Connection) => conn.model('Lock', lockSchema);
export const rateWindowModel = (conn: Connection) => conn.model('RateWindow', rateWindowSchema);
export const blobChunkModel = (conn: Connection) => conn.model('BlobChunk', blobChunkSchema);
export const articleRefModel = (conn: Connection) => conn.model('ArticleRef', articleRefSchema);
export const ticketNumberModel = (conn: Connection) => conn.model('TicketNumber', ticketNumberSchema);
export const queueModel = (conn: Connection, name: 'InboxQueue' | 'OutboxQueue') =>
  conn.model(name, queueEntrySchema.clone().set('collection', name.toLowerCase()));
