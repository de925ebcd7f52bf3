import type { Actor, TicketEvent } from '../../db/models/engine.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import type { DomainContext } from '../context.ts';
import { isFinished, mayAct, refusal, type AgentAction } from '../engine/actions.ts';
import { ticketTimers } from '../engine/timers.ts';
import { ticketEvents } from '../engine/transition.ts';
import { hardBouncesOf, type BounceHistory } from '../outbound/hard-bounces.ts';

export type { TicketEvent };

export type SlaStatus = 'answered' | 'due' | 'overdue' | 'none';

/** The first-response clock of a ticket. */
export interface SlaClock {
  status: SlaStatus;
  due: Date | null;
  answeredAt: Date | null;
  escalatedAt: Date | null;
}

/**
 * The agent's side of a ticket (the http presenters turn it into words): its events, timers,
 * SLA clock, and which actions the engine would accept from this agent now.
 */
export interface AgentTicketView {
  /** The version the forms carry: an action is refused if the ticket changed since. */
  version: number;
  /** Whether this agent may act on the ticket (a member of its unit or of First Line). */
  canAct: boolean;
  /** The actions to offer: those the engine would not refuse now ('reply' included). */
  offered: Record<string, boolean>;
  units: { key: string; name: string }[];
  sla: SlaClock;
  /** Pending timers except the SLA one (the clock shows that). */
  timers: { kind: string; due: Date }[];
  /** The audit log, oldest first: applied and refused. */
  events: TicketEvent[];
  /** The requester's and participants' addresses that our mail hard-bounced from. */
  bouncing: BounceHistory[];
}

export function slaClock(ctx: DomainContext, ticket: Pick<Ticket, 'firstResponseAt' | 'slaDue' | 'slaEscalatedAt' | 'state'>): SlaClock {
  const base = { due: ticket.slaDue ? new Date(ticket.slaDue) : null, answeredAt: ticket.firstResponseAt ? new Date(ticket.firstResponseAt) : null, escalatedAt: ticket.slaEscalatedAt ? new Date(ticket.slaEscalatedAt) : null };
  if (base.answeredAt) return { ...base, status: 'answered' };
  if (!base.due || isFinished(ticket.state)) return { ...base, status: 'none' };
  return { ...base, status: base.due <= ctx.now() ? 'overdue' : 'due' };
}

/** The transitions applied after the version someone saw (what changed while they looked). */
export async function appliedSince(ctx: DomainContext, ticketId: Ticket['_id'], version: number): Promise<TicketEvent[]> {
  return (await ticketEvents(ctx, ticketId)).filter((e) => e.outcome === 'applied' && (e.version ?? 0) > version);
}

/** The action each article was written with (a solution, a request for information…), by article id. */
export function articleActions(events: readonly TicketEvent[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events) if (e.articleId && e.outcome === 'applied') out[String(e.articleId)] = e.action;
  return out;
}

/** The address an agent acts with on this ticket: one that is a member of its unit or of First Line. */
export function agentAddress(ctx: DomainContext, addresses: string[], ticket: Pick<Ticket, 'su'>): string | null {
  return addresses.find((a) => mayAct(ctx, ticket, a)) ?? addresses.find((a) => ctx.units.isAgent(a)) ?? addresses[0] ?? null;
}

/** The agent's side of a ticket page. Three reads: events, timers and bounces. */
export async function agentTicketView(ctx: DomainContext, ticket: Ticket, actor: Actor, events?: TicketEvent[]): Promise<AgentTicketView> {
  const [log, timers, bouncing] = await Promise.all([
    events ?? ticketEvents(ctx, ticket._id),
    ticketTimers(ctx, ticket),
    hardBouncesOf(ctx, [ticket.requester.address, ...ticket.participants]),
  ]);
  const canAct = mayAct(ctx, ticket, actor.address);
  const other = ctx.units.all().find((u) => u.key !== ticket.su)?.key ?? ticket.su;
  const probes: Record<string, AgentAction> = {
    reply: { kind: 'reply' },
    take: { kind: 'take' },
    waiting: { kind: 'waiting' },
    assign: { kind: 'assign', su: other },
    hold: { kind: 'hold' },
    solve: { kind: 'solve' },
    close: { kind: 'close' },
    reopen: { kind: 'reopen' },
  };
  const offered: Record<string, boolean> = { note: canAct, priority: canAct && !['closed', 'verified'].includes(ticket.state) };
  for (const [name, action] of Object.entries(probes)) offered[name] = canAct && refusal(ctx, ticket, action, actor) === null;
  if (ticket.state === 'closed') offered.close = false;
  return {
    version: ticket.version,
    canAct,
    offered,
    units: ctx.units.all().map((u) => ({ key: u.key, name: u.name })),
    sla: slaClock(ctx, ticket),
    timers: timers.filter((j) => j.kind !== 'sla').map((j) => ({ kind: j.kind, due: j.due })),
    events: log,
    bouncing,
  };
}
