import { createHash } from 'node:crypto';
import type { Types } from 'mongoose';
import type { Actor, EventChannel, TicketEvent } from '../../db/models/engine.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import { insertOnce } from '../../db/coordination/index.ts';
import type { DomainContext } from '../context.ts';
import { recordInTicketList } from '../ticket-list.ts';

/** How many operation keys a ticket remembers (a re-run of any of them finds it applied). */
const RECENT_OPS = 30;

/** Ticket fields a transition may set. */
export type TicketChange = Partial<
  Pick<Ticket, 'state' | 'su' | 'assignee' | 'priority' | 'unitsSeen' | 'firstResponseAt' | 'slaDue' | 'slaEscalatedAt' | 'solvedAt' | 'category'>
>;

export interface TimerSpec {
  kind: string;
  due: Date;
}

export interface TransitionSpec {
  action: string;
  /** Idempotency key: the same operation run again (a re-delivered mail) is applied once. */
  op: string;
  actor: Actor;
  channel: EventChannel;
  articleId?: Types.ObjectId | null;
  /** Why the action is not allowed on the ticket as it is now, or null when it is. */
  check(ticket: Ticket): string | null;
  change(ticket: Ticket): TicketChange;
  /** Timers the new state starts (written before the transition: a timer whose state never came is dropped when due). */
  timers?(ticket: Ticket, change: TicketChange): TimerSpec[];
  /**
   * The version the actor saw (a web form): if the ticket moved on since, the action is
   * refused and the actor told what happened meanwhile.
   */
  expectedVersion?: number;
  /** Whether losing a race to another transition refuses this one (people) or re-checks and retries (timers, requesters' mail). */
  onConflict: 'refuse' | 'retry';
}

export type TransitionResult =
  | { ok: true; ticket: Ticket; event: TicketEvent; /** false when an earlier run had applied it already */ fresh: boolean }
  | { ok: false; ticket: Ticket; reason: string; event: TicketEvent };

const eventId = (ticketId: Types.ObjectId, version: number) => `${String(ticketId)}@${version}`;

function applyEvent(ticket: Ticket, event: TicketEvent): Ticket {
  const recentOps = [...ticket.recentOps.slice(-(RECENT_OPS - 1)), { op: event.op, v: event.version! }];
  return { ...ticket, ...(event.set as Partial<Ticket>), recentOps, version: event.version! };
}

/**
 * The ticket with every applied transition in it. A transition whose ticket write was lost (a
 * crash between the event and the write, or a concurrent write that put an older copy back)
 * is replayed from its event.
 */
export async function currentTicket(ctx: DomainContext, ticketId: Types.ObjectId): Promise<Ticket | null> {
  const { Ticket: Tickets, TicketEvent: Events } = ctx.store.models;
  let ticket = await Tickets.findById(ticketId).lean<Ticket>();
  if (!ticket) return null;
  ticket = normalise(ticket);
  const from = ticket.version;
  for (;;) {
    const next = await Events.findById(eventId(ticketId, ticket.version + 1)).lean<TicketEvent>();
    if (!next) break;
    ticket = applyEvent(ticket, next);
  }
  if (ticket.version !== from) {
    await writeTicket(ctx, ticket, { ...pickSet(ticket), version: ticket.version, recentOps: ticket.recentOps });
    ctx.log.warn({ ticket: ticket.number, from, to: ticket.version }, 'ticket transitions replayed from the audit log');
  }
  return ticket;
}

/** Tickets created before the engine had these fields. */
function normalise(t: Ticket): Ticket {
  return { ...t, version: t.version ?? 0, stateVersion: t.stateVersion ?? 0, recentOps: t.recentOps ?? [], unitsSeen: t.unitsSeen?.length ? t.unitsSeen : [t.su], assignee: t.assignee ?? null };
}

function pickSet(t: Ticket): Record<string, unknown> {
  const { state, su, assignee, priority, unitsSeen, firstResponseAt, slaDue, slaEscalatedAt, solvedAt, category, stateVersion, stateSince } = t;
  return { state, su, assignee, priority, unitsSeen, firstResponseAt, slaDue, slaEscalatedAt, solvedAt, category, stateVersion, stateSince };
}

async function writeTicket(ctx: DomainContext, ticket: Ticket, set: Record<string, unknown>): Promise<void> {
  await ctx.store.models.Ticket.updateOne({ _id: ticket._id }, { $set: { ...set, updatedAt: ctx.now() } });
  await recordInTicketList(ctx, { ...ticket, updatedAt: ctx.now() });
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** Says who changed the ticket meanwhile, for the one who lost the race. */
function describe(event: TicketEvent): string {
  const who = event.actor.name || event.actor.address || (event.channel === 'timer' ? 'the timer' : 'someone');
  const what = event.changes.map((c) => `${c.field} → ${typeof c.to === 'object' && c.to ? ((c.to as { address?: string }).address ?? JSON.stringify(c.to)) : String(c.to)}`).join(', ');
  return `already ${event.action === 'assign' ? 'assigned' : `changed (${event.action})`} by ${who} at ${event.at.toISOString()}${what ? `: ${what}` : ''}`;
}

/**
 * Applies one transition to a ticket, once, whatever runs at the same time.
 *
 * The transition is won by inserting its event "<ticketId>@<version+1>": of two transitions
 * at once exactly one stores it (db/coordination explains why it is not a conditional update).
 * The winner then writes the ticket; a loser either is refused with what the winner did, or
 * (onConflict: retry) checks the new state and tries again. Refusals are logged too.
 */
export async function transition(ctx: DomainContext, ticketId: Types.ObjectId, spec: TransitionSpec, current?: Ticket): Promise<TransitionResult> {
  const { TicketEvent: Events, Job: Jobs } = ctx.store.models;
  let lost: TicketEvent | null = null;
  for (let attempt = 1; attempt <= 8; attempt++) {
    // `current`: the caller has just read it through currentTicket (saves a read); a retry re-reads.
    const ticket = attempt === 1 && current ? current : await currentTicket(ctx, ticketId);
    if (!ticket) throw new Error(`ticket ${String(ticketId)} does not exist`);
    const done = ticket.recentOps.find((o) => o.op === spec.op);
    if (done) {
      const event = await Events.findById(eventId(ticketId, done.v)).lean<TicketEvent>();
      if (event) return { ok: true, ticket, event, fresh: false };
    } else if (ticket.version >= RECENT_OPS) {
      // Older than the ticket remembers (a mail delivered again long after): ask the log.
      const event = await Events.findOne({ ticketId, op: spec.op, outcome: 'applied', version: { $ne: null } }).lean<TicketEvent>();
      if (event) return { ok: true, ticket, event, fresh: false };
    }
    let reason = spec.check(ticket);
    if (!reason && lost && spec.onConflict === 'refuse') reason = describe(lost);
    if (!reason && spec.expectedVersion !== undefined && spec.expectedVersion !== ticket.version) {
      const last = await Events.findById(eventId(ticketId, ticket.version)).lean<TicketEvent>();
      reason = last ? describe(last) : 'the ticket changed meanwhile';
    }
    if (reason) {
      // Say who did it, when the refused action is one that was just done by someone else.
      reason += lost ? byWhom(lost) : await lastDoneBy(ctx, ticket, spec.action, spec.op);
      return { ok: false, ticket, reason, event: await recordRefusal(ctx, ticket, spec, reason) };
    }

    const now = ctx.now();
    const version = ticket.version + 1;
    const change = spec.change(ticket);
    const changes = Object.entries(change)
      .filter(([field, to]) => !same((ticket as unknown as Record<string, unknown>)[field], to))
      .map(([field, to]) => ({ field, from: (ticket as unknown as Record<string, unknown>)[field] ?? null, to: to ?? null }));
    const set: Record<string, unknown> = { ...change };
    const newState = change.state !== undefined && change.state !== ticket.state;
    if (newState) {
      set.stateVersion = version;
      set.stateSince = now;
    }
    for (const timer of spec.timers?.(ticket, change) ?? []) {
      {
        const jobState = newState ? change.state : ticket.state;
        const jobStateVersion = newState ? version : ticket.stateVersion;
        await insertOnce(Jobs, { _id: `${timer.kind}:${String(ticketId)}@${version}`, kind: timer.kind, ticketId, ticketNumber: ticket.number, state: jobState, stateVersion: jobStateVersion, due: timer.due });
      }
    }
    const event: TicketEvent = {
      _id: eventId(ticketId, version),
      ticketId,
      ticketNumber: ticket.number,
      version,
      action: spec.action,
      op: spec.op,
      actor: spec.actor,
      channel: spec.channel,
      at: now,
      outcome: 'applied',
      reason: null,
      changes,
      set,
      articleId: spec.articleId ?? null,
    };
    const won = await insertOnce<TicketEvent>(Events, event as unknown as TicketEvent & Record<string, unknown>);
    if (!won.created) {
      if (won.doc.op !== spec.op) lost = won.doc;
      continue;
    }
    const fresh = applyEvent(ticket, event);
    await writeTicket(ctx, fresh, { ...set, recentOps: fresh.recentOps, version });
    ctx.log.info({ ticket: ticket.number, action: spec.action, channel: spec.channel, by: spec.actor.address, changes: changes.map((c) => c.field) }, 'ticket transition');
    return { ok: true, ticket: { ...fresh, updatedAt: now }, event, fresh: true };
  }
  throw new Error(`ticket ${String(ticketId)}: could not apply ${spec.action} after 8 attempts (too many changes at once)`);
}

/** " (by <who> at <when>)" when the ticket's last transition was this same action by someone else, else "". */
export async function lastDoneBy(ctx: DomainContext, ticket: Pick<Ticket, '_id' | 'version'>, action: string, op = ''): Promise<string> {
  if (!ticket.version) return '';
  const last = await ctx.store.models.TicketEvent.findById(eventId(ticket._id, ticket.version)).lean<TicketEvent>();
  if (!last || last.action !== action || last.op === op) return '';
  return byWhom(last);
}

function byWhom(event: TicketEvent): string {
  return ` (by ${event.actor.name || event.actor.address || event.channel} at ${new Date(event.at).toISOString()})`;
}

/**
 * Logs something that happened to a ticket without changing it (a reminder sent), once per
 * operation: the event's _id derives from the operation, so a re-run finds it. It takes no
 * version, so it never makes anyone's next action a lost race.
 */
export async function recordOnce(
  ctx: DomainContext,
  ticket: Ticket,
  what: Pick<TransitionSpec, 'action' | 'op' | 'actor' | 'channel'> & { changes?: TicketEvent['changes'] },
): Promise<{ event: TicketEvent; fresh: boolean }> {
  const event: TicketEvent = {
    _id: `${String(ticket._id)}~${createHash('sha256').update(what.op).digest('hex').slice(0, 24)}`,
    ticketId: ticket._id,
    ticketNumber: ticket.number,
    version: null,
    action: what.action,
    op: what.op,
    actor: what.actor,
    channel: what.channel,
    at: ctx.now(),
    outcome: 'applied',
    reason: null,
    changes: what.changes ?? [],
    set: {},
    articleId: null,
  };
  const { doc, created } = await insertOnce<TicketEvent>(ctx.store.models.TicketEvent, event as unknown as TicketEvent & Record<string, unknown>);
  return { event: doc, fresh: created };
}

/** Logs an attempt refused before it came to a transition (e.g. a mail's commands found not allowed). */
export function recordAttempt(ctx: DomainContext, ticket: Ticket, attempt: Pick<TransitionSpec, 'action' | 'op' | 'actor' | 'channel' | 'articleId'>, reason: string): Promise<TicketEvent> {
  return recordRefusal(ctx, ticket, attempt, reason);
}

async function recordRefusal(ctx: DomainContext, ticket: Ticket, spec: Pick<TransitionSpec, 'action' | 'op' | 'actor' | 'channel' | 'articleId'>, reason: string): Promise<TicketEvent> {
  const event: TicketEvent = {
    _id: `${String(ticket._id)}!${createHash('sha256').update(spec.op).digest('hex').slice(0, 24)}`,
    ticketId: ticket._id,
    ticketNumber: ticket.number,
    version: null,
    action: spec.action,
    op: spec.op,
    actor: spec.actor,
    channel: spec.channel,
    at: ctx.now(),
    outcome: 'refused',
    reason,
    changes: [],
    set: {},
    articleId: spec.articleId ?? null,
  };
  const { doc, created } = await insertOnce<TicketEvent>(ctx.store.models.TicketEvent, event as unknown as TicketEvent & Record<string, unknown>);
  if (created) ctx.log.info({ ticket: ticket.number, action: spec.action, by: spec.actor.address, reason }, 'ticket transition refused');
  return doc;
}

/** The audit log of a ticket, oldest first: applied transitions and refused attempts. */
export async function ticketEvents(ctx: DomainContext, ticketId: Types.ObjectId): Promise<TicketEvent[]> {
  return ctx.store.models.TicketEvent.find({ ticketId }).sort({ at: 1, version: 1 }).lean<TicketEvent[]>();
}
