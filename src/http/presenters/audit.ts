import type { TicketEvent } from '../../domain/portal/agent-view.ts';
import { formatTime } from './format.ts';

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

/** Unit keys to names (a key no longer configured is shown as it is). */
export type UnitNames = (key: string) => string;

function formatValue(unit: UnitNames, field: string, value: unknown): string {
  if (value === null || value === undefined || (Array.isArray(value) && !value.length)) return '—';
  if (field === 'su') return unit(String(value));
  if (field === 'unitsSeen' && Array.isArray(value)) return value.map((k) => unit(String(k))).join(', ');
  if (value instanceof Date || (typeof value === 'string' && /^\d{4}-\d\d-\d\dT/.test(value))) return formatTime(value as Date | string);
  if (typeof value === 'object') {
    const person = value as { name?: string; address?: string };
    return person.name || person.address || JSON.stringify(value);
  }
  return String(value);
}

export function auditEntry(unit: UnitNames, e: TicketEvent): AuditEntry {
  const who = e.actor.name && e.actor.address ? `${e.actor.name} <${e.actor.address}>` : e.actor.name || e.actor.address || (e.channel === 'timer' ? 'Timer' : 'helpgate');
  return {
    at: e.at,
    who,
    role: e.actor.role,
    channel: e.channel,
    action: e.action,
    outcome: e.outcome,
    reason: e.reason,
    changes: e.changes.map((c) => ({ field: FIELD_LABELS[c.field] ?? c.field, from: formatValue(unit, c.field, c.from), to: formatValue(unit, c.field, c.to) })),
  };
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
 * What happened to a ticket meanwhile, in words for the one who lost the race:
 * "assigned by Frida Firstline at 2026-12-01 05:15 UTC (Support Unit: First Line → Technical)".
 */
export function describeChanges(unit: UnitNames, events: readonly TicketEvent[]): string[] {
  return events.map((e) => {
    const entry = auditEntry(unit, e);
    const changes = entry.changes.filter((c) => SHOWN_FIELDS.includes(c.field)).map((c) => `${c.field}: ${c.from} → ${c.to}`);
    return `${PAST[e.action] ?? `changed (${e.action})`} by ${e.actor.name || e.actor.address || 'the helpdesk'} at ${formatTime(e.at)}${changes.length ? ` (${changes.join('; ')})` : ''}`;
  });
}

export function timerLabel(kind: string): string {
  const reminder = /^remind-(\d+)$/.exec(kind);
  if (reminder) return `Reminder ${reminder[1]} to the requester`;
  if (kind === 'unsolved') return 'Marked unsolved if the requester has not replied';
  if (kind === 'close-solved') return 'Closed automatically if nobody objects to the solution';
  return kind;
}
