import { Lease } from '../../db/coordination/index.ts';
import type { Actor, Job } from '../../db/models/engine.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import { formatTag } from '../../mail/parse/subject.ts';
import type { DomainContext } from '../context.ts';
import { tellRequester, tellUnit } from '../notify.ts';
import { isFinished } from './actions.ts';
import { metrics } from '../../log/metrics.ts';
import { currentTicket, recordOnce, transition, type TransitionResult } from './transition.ts';

/** How long a process may hold a due timer before another may run it. */
const JOB_LEASE_MS = 60_000;
/** Timers looked at per pass. */
const BATCH = 100;

const lastLeaseSweep = new WeakMap<object, number>();

const TIMER: Actor = { address: null, name: 'Timer', sub: null, role: 'system' };

export interface TimerPass {
  /** Timers found due. */
  due: number;
  /** Timers this process ran (whatever they found to do). */
  ran: number;
}

/**
 * Runs the timers that are due. Every helpgate process calls this periodically and at start
 * (a timer that fell due while all were down runs then). A timer is held under a lease,
 * re-read (another process may have finished it), run, and deleted; what it does is itself a
 * transition with an idempotency key and mails keyed by the transition, so even a timer run
 * twice (a process that died after acting, before deleting it) acts once.
 */
export const TIMER_BATCH = BATCH;

export async function runDueTimers(ctx: DomainContext, owner: string): Promise<TimerPass> {
  const { Job: Jobs } = ctx.store.models;
  const now = ctx.now();
  const leases = new Lease(ctx.store, JOB_LEASE_MS);
  // Leases left by processes that died (timers', held mail's) are removed now and then.
  if (now.getTime() - (lastLeaseSweep.get(ctx.store) ?? 0) > 10 * 60_000) {
    lastLeaseSweep.set(ctx.store, now.getTime());
    await leases.sweep(now);
  }
  const due = await Jobs.find({ due: { $lte: now } }).sort({ due: 1 }).limit(BATCH).lean<Job[]>();
  let ran = 0;
  for (const job of due) {
    if (!(await leases.tryHold(`job:${job._id}`, owner, now))) continue;
    if (!(await Jobs.findById(job._id, { _id: 1 }).lean())) continue;
    await runJob(ctx, job);
    await Jobs.deleteOne({ _id: job._id });
    ran++;
  }
  return { due: due.length, ran };
}

/** The timers waiting for a ticket (for its page), soonest first. */
export async function ticketTimers(ctx: DomainContext, ticket: Pick<Ticket, '_id' | 'state' | 'stateVersion'>): Promise<Job[]> {
  const jobs = await ctx.store.models.Job.find({ ticketId: ticket._id }).sort({ due: 1 }).lean<Job[]>();
  return jobs.filter((j) => j.kind === 'sla' || (j.state === ticket.state && j.stateVersion === ticket.stateVersion));
}

async function runJob(ctx: DomainContext, job: Job): Promise<void> {
  const ticket = await currentTicket(ctx, job.ticketId);
  if (!ticket) return;
  if (job.kind === 'sla') return escalate(ctx, ticket);
  const op = `timer:${job._id}`;
  // A state timer acts only if the ticket is still in the state it was started for, or if it
  // acted already (a process died before its mails were queued: the re-run queues them).
  const actedAlready = ticket.recentOps.some((o) => o.op === op);
  if (!actedAlready && (ticket.state !== job.state || ticket.stateVersion !== job.stateVersion)) return;
  const stillThere = (t: Ticket) => (t.state === job.state && t.stateVersion === job.stateVersion ? null : 'the ticket has moved on');
  const tag = formatTag(ctx.config.ticketPrefix, ticket.number);
  const reminder = /^remind-(\d+)$/.exec(job.kind);
  if (reminder) {
    const n = Number(reminder[1]);
    // A reminder changes nothing on the ticket: it is logged, once, without a new version.
    const { event } = await recordOnce(ctx, ticket, { action: `reminder ${n}`, op, actor: TIMER, channel: 'timer' });
    const days = ctx.config.timers.waitingReminders[n - 1];
    await tellRequester(ctx, ticket, {
      key: event._id,
      kind: `reminder-${n}`,
      text: null,
      lines: [
        `Reminder: we asked you for more information on ${tag} ${days} working days ago and are still waiting for your reply.`,
        `Please reply to this mail. Without a reply the ticket is marked unsolved after ${ctx.config.timers.waitingUnsolved} working days.`,
      ],
    });
    return;
  }
  if (job.kind === 'unsolved') {
    const result = await transition(ctx, ticket._id, { action: 'unsolved', op, actor: TIMER, channel: 'timer', check: stillThere, change: () => ({ state: 'unsolved' }), onConflict: 'retry' }, ticket);
    if (!applied(result)) return;
    const lines = [`No reply came within ${ctx.config.timers.waitingUnsolved} working days, so ${tag} is now unsolved.`];
    await tellRequester(ctx, result.ticket, { key: result.event._id, kind: 'unsolved', text: null, lines: [...lines, 'If you still need help, reply to this mail and the ticket is reopened.'] });
    await tellUnit(ctx, result.ticket, { key: result.event._id, kind: 'unsolved', headline: `Ticket ${tag} is unsolved: the requester did not reply in ${ctx.config.timers.waitingUnsolved} working days` });
    return;
  }
  if (job.kind === 'close-solved') {
    const result = await transition(ctx, ticket._id, { action: 'close', op, actor: TIMER, channel: 'timer', check: stillThere, change: () => ({ state: 'closed' }), onConflict: 'retry' }, ticket);
    if (!applied(result)) return;
    await tellRequester(ctx, result.ticket, {
      key: result.event._id,
      kind: 'closed',
      text: null,
      lines: [`Ticket ${tag} has been closed, ${ctx.config.timers.solvedClose} working days after its solution. If you write again, a new ticket is opened.`],
    });
    return;
  }
  ctx.log.warn({ job: job._id }, 'unknown timer kind: dropped');
}

/** SLA: the first response is overdue → one escalation mail to the unit and to First Line. */
async function escalate(ctx: DomainContext, ticket: Ticket): Promise<void> {
  const overdue = (t: Ticket) =>
    t.firstResponseAt ? 'answered' : t.slaEscalatedAt ? 'escalated already' : !t.slaDue || new Date(t.slaDue) > ctx.now() ? 'not due' : isFinished(t.state) ? `the ticket is ${t.state}` : null;
  const op = `timer:sla:${String(ticket._id)}`;
  if (overdue(ticket) && !ticket.recentOps.some((o) => o.op === op)) return;
  const result = await transition(ctx, ticket._id, { action: 'escalate', op, actor: TIMER, channel: 'timer', check: overdue, change: () => ({ slaEscalatedAt: ctx.now() }), onConflict: 'retry' }, ticket);
  if (!applied(result)) return;
  metrics.slaEscalations.inc();
  const tag = formatTag(ctx.config.ticketPrefix, ticket.number);
  const promise = ctx.config.timers.firstResponse[result.ticket.priority];
  const headline = `SLA breached: ${tag} (${result.ticket.priority}) has had no first response within ${promise} working day${promise === 1 ? '' : 's'}`;
  await tellUnit(ctx, result.ticket, { key: result.event._id, kind: 'sla-breach', headline });
  if (result.ticket.su !== ctx.units.entryKey) {
    await tellUnit(ctx, result.ticket, { key: result.event._id, kind: 'sla-breach', unit: ctx.units.entryKey, headline, exclude: ctx.units.members(result.ticket.su) });
  }
}

function applied(result: TransitionResult): result is TransitionResult & { ok: true } {
  return result.ok;
}
