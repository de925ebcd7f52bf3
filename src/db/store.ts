import mongoose, { type Connection } from 'mongoose';
import { StoreUnavailableError } from '../errors/errors.ts';
import { BlobStore } from './blobs.ts';
import { articleModel } from './models/article.ts';
import { hardBounceModel } from './models/bounce.ts';
import { jobModel, secretModel, ticketEventModel } from './models/engine.ts';
import { heldMailModel, heldSenderModel } from './models/held.ts';
import { addressBindingModel, mailTokenModel, sessionModel, ticketListModel, userModel } from './models/identity.ts';
import { inboxModel } from './models/inbox.ts';
import { intakeModels } from './models/intake.ts';
import { blobChunkModel, lockModel, queueModel, rateWindowModel, threadIdModel } from './models/misc.ts';
import { opsEventModel } from './models/ops-event.ts';
import { outboxModel } from './models/outbox.ts';
import { erasureRequestModel, privacyRunModel } from './models/privacy.ts';
import { ticketModel } from './models/ticket.ts';

export interface StoreOptions {
  /** Database name; default "helpgate", or the one in the URI's path. */
  dbName?: string;
  /** How long an operation waits for a reachable server before it fails. */
  timeoutMs?: number;
}

function buildModels(conn: Connection) {
  return {
    Inbox: inboxModel(conn),
    InboxQueue: queueModel(conn, 'InboxQueue'),
    OutboxQueue: queueModel(conn, 'OutboxQueue'),
    Ticket: ticketModel(conn),
    Article: articleModel(conn),
    Outbox: outboxModel(conn),
    ThreadId: threadIdModel(conn),
    Lock: lockModel(conn),
    RateWindow: rateWindowModel(conn),
    BlobChunk: blobChunkModel(conn),
    User: userModel(conn),
    AddressBinding: addressBindingModel(conn),
    MailToken: mailTokenModel(conn),
    Session: sessionModel(conn),
    TicketList: ticketListModel(conn),
    HeldSender: heldSenderModel(conn),
    HeldMail: heldMailModel(conn),
    TicketEvent: ticketEventModel(conn),
    Job: jobModel(conn),
    Secret: secretModel(conn),
    HardBounce: hardBounceModel(conn),
    OpsEvent: opsEventModel(conn),
    ...intakeModels(conn),
    ErasureRequest: erasureRequestModel(conn),
    PrivacyRun: privacyRunModel(conn),
  };
}

export type Models = ReturnType<typeof buildModels>;

export interface Store {
  readonly conn: Connection;
  readonly models: Models;
  readonly blobs: BlobStore;
  close(): Promise<void>;
}

/**
 * Connects, declares the models and syncs their indexes. Writes are journaled and
 * acknowledged by a majority, so an answer of "stored" means stored. Commands are not
 * buffered while disconnected: a dead database fails fast with StoreUnavailableError
 * instead of hanging an SMTP client.
 */
export async function openStore(uri: string, opts: StoreOptions = {}): Promise<Store> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const pathDb = new URL(uri.replace(/^mongodb(\+srv)?:/, 'http:')).pathname.replace(/^\//, '');
  const conn = mongoose.createConnection(uri, {
    dbName: opts.dbName ?? (pathDb || 'helpgate'),
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    socketTimeoutMS: Math.max(30_000, timeoutMs),
    heartbeatFrequencyMS: 2000,
    // Set, not left to the driver's 100: the embedded FerretDB's PostgreSQL pool is sized above it (db/engine/postgres.ts).
    maxPoolSize: 20,
    bufferCommands: false,
    autoIndex: false,
    autoCreate: false,
    writeConcern: { w: 'majority', journal: true },
  });
  try {
    await conn.asPromise();
  } catch (err) {
    await conn.close().catch(() => {});
    throw new StoreUnavailableError(`cannot connect to the database: ${(err as Error).message}`, { cause: err });
  }
  const models = buildModels(conn);
  for (const model of Object.values(models)) {
    await model.createCollection().catch((err: { code?: number }) => {
      if (err.code !== 48) throw err; // 48: NamespaceExists
    });
    await model.syncIndexes();
  }
  return {
    conn,
    models,
    blobs: new BlobStore(models.BlobChunk),
    close: () => conn.close(),
  };
}
