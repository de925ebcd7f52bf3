import type { Actor, TicketEvent } from '../../db/models/engine.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import type { DomainContext } from '../context.ts';
import { isFinished, mayAct, refusal, type AgentAction } from '../engine/actions.ts';
import { ticketTimers } from '../engine/timers.ts';
import { ticketEvents } from '../engine/transition.ts';
import { hardBouncesOf, type BounceHistory } from '../outbound/hard-bounces.ts';

/** One line of a ticket's audit log, ready to show. */
export interface AuditEntry {
  at: Date;
  who: string;
  role: string;
  channel: string;
  action: string;
  outcome: 'applied' | 'refused';
  reason: string | null;
  changes: { field: string; from: string; to: string }[];
}

export type SlaStatus = 'answered' | 'due' | 'overdue' | 'none';

/** The first-response clock of a ticket. */
export interface SlaClock {
  status: SlaStatus;
  due: Date | null;
  answeredAt: Date | null;
  escalatedAt: Date | null;
}

export interface PendingTimer {
  kind: string;
  label: string;
  due: Date;
}

/** What an agent's ticket page shows beyond the conversation. */
export interface AgentTicketView {
  /** The version the forms carry: an action is refused if the ticket changed since. */
  version: number;
  /** Why this agent cannot act on the ticket (it moved to a unit they are not in), or null. */
  cannotAct: string | null;
  /** The actions offered as buttons: those the engine would not refuse now. */
  offered: Record<string, boolean>;
  units: { key: string; name: string }[];
  sla: SlaClock;
  timers: PendingTimer[];
  log: AuditEntry[];
  /** The action an article was written with (a solution, a request for information…), by article id. */
  articleActions: Record<string, string>;
  /** The requester's and participants' addresses that our mail hard-bounced from. */
  bouncing: BounceHistory[];
}

const FIELD_LABELS: Record<string, string> = {
  state: 'state',
  su: 'Support Unit',
  assignee: 'assignee',
  priority: 'priority',
  unitsSeen: 'units seen',
  firstResponseAt: 'first response',
  slaDue: 'first response due',
  slaEscalatedAt: 'SLA escalated',
  solvedAt: 'solved at',
  category: 'category',
};

export function formatTime(value: Date | string): string {
  return new Date(value).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

function formatValue(ctx: DomainContext, field: string, value: unknown): string {
  if (value === null || value === undefined || (Array.isArray(value) && !value.length)) return '—';
  const unit = (key: unknown) => ctx.units.get(String(key))?.name ?? String(key);
  if (field === 'su') return unit(value);
  if (field === 'unitsSeen' && Array.isArray(value)) return value.map(unit).join(', ');
  if (value instanceof Date || (typeof value === 'string' && /^\d{4}-\d\d-\d\dT/.test(value))) return formatTime(value as Date | string);
  if (typeof value === 'object') {
    const person = value as { name?: string; address?: string };
    return person.name || person.address || JSON.stringify(value);
  }
  return String(value);
}

export function auditEntry(ctx: DomainContext, e: TicketEvent): AuditEntry {
  const who = e.actor.name && e.actor.address ? `${e.actor.name} <${e.actor.address}>` : e.actor.name || e.actor.address || (e.channel === 'timer' ? 'Timer' : 'helpgate');
  return {
    at: e.at,
    who,
    role: e.actor.role,
    channel: e.channel,
    action: e.action,
    outcome: e.outcome,
    reason: e.reason,
    changes: e.changes.map((c) => ({ field: FIELD_LABELS[c.field] ?? c.field, from: formatValue(ctx, c.field, c.from), to: formatValue(ctx, c.field, c.to) })),
  };
}

export function slaClock(ctx: DomainContext, ticket: Pick<Ticket, 'firstResponseAt' | 'slaDue' | 'slaEscalatedAt' | 'state'>): SlaClock {
  const base = { due: ticket.slaDue ? new Date(ticket.slaDue) : null, answeredAt: ticket.firstResponseAt ? new Date(ticket.firstResponseAt) : null, escalatedAt: ticket.slaEscalatedAt ? new Date(ticket.slaEscalatedAt) : null };
  if (base.answeredAt) return { ...base, status: 'answered' };
  if (!base.due || isFinished(ticket.state)) return { ...base, status: 'none' };
  return { ...base, status: base.due <= ctx.now() ? 'overdue' : 'due' };
}

const PAST: Record<string, string> = {
  take: 'taken',
  assign: 'assigned',
  priority: 'given another priority',
  waiting: 'set to wait for the requester',
  hold: 'put on hold',
  solve: 'solved',
  close: 'closed',
  reopen: 'reopened',
  verify: 'verified',
  answered: 'answered by the requester',
  unsolved: 'marked unsolved',
};
const SHOWN_FIELDS = ['Support Unit', 'state', 'assignee', 'priority'];

/**
 * What happened to a ticket after the version someone saw, in words for the one who lost the
 * race: "assigned by Frida Firstline at 2026-12-01 05:15 UTC (Support Unit: First Line → Technical)".
 */
export async function changesSince(ctx: DomainContext, ticketId: Ticket['_id'], version: number): Promise<string[]> {
  const events = (await ticketEvents(ctx, ticketId)).filter((e) => e.outcome === 'applied' && (e.version ?? 0) > version);
  return events.map((e) => {
    const entry = auditEntry(ctx, e);
    const changes = entry.changes.filter((c) => SHOWN_FIELDS.includes(c.field)).map((c) => `${c.field}: ${c.from} → ${c.to}`);
    return `${PAST[e.action] ?? `changed (${e.action})`} by ${e.actor.name || e.actor.address || 'the helpdesk'} at ${formatTime(e.at)}${changes.length ? ` (${changes.join('; ')})` : ''}`;
  });
}

function timerLabel(kind: string): string {
  const reminder = /^remind-(\d+)$/.exec(kind);
  if (reminder) return `Reminder ${reminder[1]} to the requester`;
  if (kind === 'unsolved') return 'Marked unsolved if the requester has not replied';
  if (kind === 'close-solved') return 'Closed automatically if nobody objects to the solution';
  return kind;
}

/** The address an agent acts with on this ticket: one that is a member of its unit or of First Line. */
export function agentAddress(ctx: DomainContext, addresses: string[], ticket: Pick<Ticket, 'su'>): string | null {
  return addresses.find((a) => mayAct(ctx, ticket, a)) ?? addresses.find((a) => ctx.units.isAgent(a)) ?? addresses[0] ?? null;
}

/**
 * The agent's side of a ticket page: the audit log (applied and refused, oldest first), the
 * SLA clock, the pending timers, which actions to offer, and the addresses mail does not reach.
 * Three reads: events, timers and bounces.
 */
export async function agentTicketView(ctx: DomainContext, ticket: Ticket, actor: Actor): Promise<AgentTicketView> {
  const [events, timers, bouncing] = await Promise.all([ticketEvents(ctx, ticket._id), ticketTimers(ctx, ticket), hardBouncesOf(ctx, [ticket.requester.address, ...ticket.participants])]);
  const canAct = mayAct(ctx, ticket, actor.address);
  const other = ctx.units.all().find((u) => u.key !== ticket.su)?.key ?? ticket.su;
  const probes: Record<string, AgentAction> = {
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
  const articleActions: Record<string, string> = {};
  for (const e of events) if (e.articleId && e.outcome === 'applied') articleActions[String(e.articleId)] = e.action;
  const unit = ctx.units.get(ticket.su)?.name ?? ticket.su;
  return {
    version: ticket.version,
    cannotAct: canAct ? null : `This ticket is now with ${unit}: you can read it, but only ${unit} or ${ctx.units.entry.name} can act on it.`,
    offered,
    units: ctx.units.all().map((u) => ({ key: u.key, name: u.name })),
    sla: slaClock(ctx, ticket),
    timers: timers.filter((j) => j.kind !== 'sla').map((j) => ({ kind: j.kind, label: timerLabel(j.kind), due: j.due })),
    log: events.map((e) => auditEntry(ctx, e)),
    articleActions,
    bouncing,
  };
}
