import type { DatabaseFigures } from '../log/metrics.ts';
import type { Store } from './store.ts';

/** How states and ages are counted for the metrics at scrape time. */
export interface FigureOptions {
  now: Date;
  /** Ticket states in which the first-response clock no longer runs. */
  finishedStates: readonly string[];
  /** A timer this long overdue counts as late (two timer intervals). */
  lateAfterMs: number;
}

const INBOX_STATES = ['pending', 'done', 'ignored', 'held', 'expired', 'quarantined'];
const OUTBOX_STATES = ['queued', 'sent', 'captured', 'failed', 'cancelled', 'delayed'];

/**
 * The figures the metrics read from the database, for one scrape: counts by state (one count
 * per state: every engine answers countDocuments, not every one $group), queue depths and ages.
 * The queues are small collections; the state counts scan the inbox and outbox, so a scrape
 * every 15–60 s is what they are meant for.
 */
export async function databaseFigures(store: Store, opts: FigureOptions): Promise<DatabaseFigures> {
  const { Inbox, InboxQueue, Outbox, OutboxQueue, IntakeStatus, Job, Ticket } = store.models;
  const now = opts.now.getTime();
  const countBy = async (model: { countDocuments(filter: Record<string, unknown>): PromiseLike<number> }, states: string[]) =>
    Object.fromEntries(await Promise.all(states.map(async (state) => [state, await model.countDocuments({ state })] as const))) as Record<string, number>;
  const [inboxByState, outboxByState, inboxQueueDepth, oldest, outboxQueueDepth, imap, timersDue, timersLate, slaBreachedTickets] = await Promise.all([
    countBy(Inbox, INBOX_STATES),
    countBy(Outbox, OUTBOX_STATES),
    InboxQueue.countDocuments({ due: { $exists: true } }),
    InboxQueue.find({ due: { $exists: true } }, { since: 1 }).sort({ since: 1 }).limit(1).lean<{ since: Date }[]>(),
    OutboxQueue.countDocuments({ due: { $exists: true } }),
    IntakeStatus.find({ kind: 'imap' }, { backlog: 1, updatedAt: 1 }).lean<{ _id: string; backlog: number | null; updatedAt: Date }[]>(),
    Job.countDocuments({ due: { $lte: opts.now } }),
    Job.countDocuments({ due: { $lte: new Date(now - opts.lateAfterMs) } }),
    Ticket.countDocuments({ slaEscalatedAt: { $ne: null }, firstResponseAt: null, state: { $nin: [...opts.finishedStates] } } as Record<string, unknown>),
  ]);
  return {
    inboxQueueDepth,
    inboxOldestSeconds: oldest[0] ? Math.max(0, (now - new Date(oldest[0].since).getTime()) / 1000) : 0,
    inboxByState,
    outboxByState,
    outboxQueueDepth,
    heldMails: inboxByState.held ?? 0,
    imap: imap.map((s) => ({ mailbox: s._id.replace(/^imap:/, ''), backlog: s.backlog ?? 0, lastReportSeconds: Math.max(0, (now - new Date(s.updatedAt).getTime()) / 1000) })),
    timersDue,
    timersLate,
    slaBreachedTickets,
  };
}

/**
 * The readiness probe's database check: a round trip and a write. The write goes to a document
 * of this process's own, so probes of many processes never contend.
 */
export async function probeDatabase(store: Store, processId: string): Promise<void> {
  await store.conn.db!.collection<{ _id: string; at: Date }>('probes').updateOne({ _id: processId }, { $set: { at: new Date() } }, { upsert: true });
}

/** Whether outbound mail has been due for longer than `stalledAfterMs` without being sent. */
export async function oldestDueOutboxSeconds(store: Store, now: Date): Promise<number> {
  const [oldest] = await store.models.OutboxQueue.find({ due: { $exists: true, $lte: now } }, { due: 1 }).sort({ due: 1 }).limit(1).lean<{ due: Date }[]>();
  return oldest ? Math.max(0, (now.getTime() - new Date(oldest.due).getTime()) / 1000) : 0;
}
