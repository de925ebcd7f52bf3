import os from 'node:os';
import type { Model } from 'mongoose';
import { errorMessage, isDuplicateKeyError } from '../errors/errors.ts';
import type { IntakeStatus } from './models/intake.ts';

type Fields = Partial<Omit<IntakeStatus, '_id' | 'kind' | 'updatedAt' | 'reporter'>>;

export const hostName = os.hostname();
/** Who reports a status: this host and process. */
export const reporterId = `${hostName}:${process.pid}`;

/**
 * Keeps an intake's line of `helpgate status` (models/intake.ts, intakeStatusSchema) up to
 * date: a change of state or a new error is written at once, counters at most every
 * `minIntervalMs` (10 s: a busy intake must not spend a write per message on its own status),
 * and everything again every `heartbeatMs` so a silent process shows as such.
 * Writes are serialised and never throw: a status must not stop mail.
 */
export class IntakeStatusReporter {
  private fields: Fields = {};
  private written: Fields = {};
  private lastWrite = 0;
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly model: Model<any>,
    readonly id: string,
    private readonly kind: IntakeStatus['kind'],
    private readonly opts: { minIntervalMs?: number; heartbeatMs?: number; onError?: (message: string) => void } = {},
  ) {}

  startHeartbeat(): void {
    const ms = this.opts.heartbeatMs ?? 30_000;
    this.heartbeat ??= setInterval(() => this.write(), ms);
    this.heartbeat.unref();
  }

  /** Merges fields; writes now when the state or the error changed, else soon. */
  set(fields: Fields): void {
    const urgent = (fields.state !== undefined && fields.state !== this.written.state) || (fields.lastError !== undefined && fields.lastError !== this.written.lastError);
    Object.assign(this.fields, fields);
    const wait = urgent ? 0 : Math.max(0, (this.opts.minIntervalMs ?? 10_000) - (Date.now() - this.lastWrite));
    if (wait === 0) this.write();
    else this.timer ??= setTimeout(() => this.write(), wait);
  }

  error(err: unknown, state: string): void {
    this.set({ state, lastError: errorMessage(err), lastErrorAt: new Date(), failures: (this.fields.failures ?? 0) + 1 });
  }

  messageStored(at = new Date()): void {
    this.set({ lastMessageAt: at, messages: (this.fields.messages ?? 0) + 1 });
  }

  get current(): Readonly<Fields> {
    return this.fields;
  }

  /** Writes what is pending and stops the timers. */
  async stop(final?: Fields): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (final) Object.assign(this.fields, final);
    this.write();
    await this.chain;
  }

  private write(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.lastWrite = Date.now();
    const snapshot = { ...this.fields };
    this.written = snapshot;
    this.chain = this.chain.then(() => this.save(snapshot));
  }

  private async save(fields: Fields): Promise<void> {
    const update = { $set: { ...fields, kind: this.kind, reporter: reporterId, updatedAt: new Date() } };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await this.model.updateOne({ _id: this.id }, update, { upsert: true });
        return;
      } catch (err) {
        // Two processes creating the document at once: one insert loses, the update then finds it.
        if (isDuplicateKeyError(err) && attempt === 0) continue;
        this.opts.onError?.(errorMessage(err));
        return;
      }
    }
  }
}

/** `helpgate ingest` stored a message: the pipe's line of `helpgate status`. Never throws. */
export async function recordPipeDelivery(store: { models: { IntakeStatus: Model<any> } }): Promise<void> {
  const now = new Date();
  await store.models.IntakeStatus.updateOne(
    { _id: 'pipe' },
    { $set: { kind: 'pipe', state: 'last run stored its message', reporter: reporterId, lastMessageAt: now, updatedAt: now }, $inc: { messages: 1 } },
    { upsert: true },
  ).catch(() => {});
}
