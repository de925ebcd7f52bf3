import { PRIORITIES, TICKET_STATES, type Ticket } from '../../db/models/ticket.ts';
import type { DomainContext } from '../context.ts';
import { isFinished } from '../engine/actions.ts';
import type { Viewer } from './access.ts';
import { slaClock, type SlaStatus } from './agent-view.ts';

/** A unit's queue: which tickets, filtered how (the portal checks the query: http/forms). */
export interface QueueFilters {
  /** "active" (not solved, unsolved, verified or closed; the default), "all", or one state. */
  state: string;
  priority: string;
  /** "me", "nobody", an agent's address, or "" for anyone. */
  assignee: string;
  /** "due" (no first response yet), "overdue", or "". */
  sla: string;
  /** "now": tickets in the unit now; "seen": also those that were in it once. */
  scope: 'now' | 'seen';
}

export interface QueueRow {
  number: number;
  subject: string;
  state: string;
  priority: string;
  su: string;
  assignee: { address: string; name: string } | null;
  requester: { address: string; name: string };
  sla: SlaStatus;
  slaDue: Date | null;
  updatedAt: Date;
}

export interface UnitQueue {
  unit: { key: string; name: string };
  /** The units whose queue the viewer may open. */
  units: { key: string; name: string }[];
  filters: QueueFilters;
  rows: QueueRow[];
  /** Rows matching the filters (more than shown when over the page limit). */
  total: number;
  /** Tickets per state in the unit (within the scope), whatever the other filters. */
  counters: { state: string; count: number }[];
  assignees: { address: string; name: string }[];
}

const SHOWN = 200;
const FIELDS = { number: 1, subject: 1, state: 1, priority: 1, su: 1, assignee: 1, requester: 1, slaDue: 1, firstResponseAt: 1, slaEscalatedAt: 1, updatedAt: 1, unitsSeen: 1 };

/** Urgency: overdue first response, then priority (top first), then the oldest activity. */
function byUrgency(a: QueueRow, b: QueueRow): number {
  const overdue = Number(b.sla === 'overdue') - Number(a.sla === 'overdue');
  if (overdue) return overdue;
  const priority = PRIORITIES.indexOf(b.priority as never) - PRIORITIES.indexOf(a.priority as never);
  if (priority) return priority;
  return new Date(a.updatedAt).getTime() - new Date(b.updatedAt).getTime() || a.number - b.number;
}

/**
 * The queue of one of the viewer's units: one query for the unit's tickets, filtered,
 * counted and sorted here. null when the viewer is not a member of the unit.
 */
export async function unitQueue(ctx: DomainContext, viewer: Viewer, key: string, filters: QueueFilters): Promise<UnitQueue | null> {
  const unit = ctx.units.get(key);
  if (!unit || !viewer.units.includes(key)) return null;
  const query = filters.scope === 'seen' ? { $or: [{ su: key }, { unitsSeen: key }] } : { su: key };
  const tickets = await ctx.store.models.Ticket.find(query, FIELDS).lean<Ticket[]>();
  const all: QueueRow[] = tickets.map((t) => ({
    number: t.number,
    subject: t.subject,
    state: t.state,
    priority: t.priority ?? 'less urgent',
    su: t.su,
    assignee: t.assignee?.address ? t.assignee : null,
    requester: t.requester,
    sla: slaClock(ctx, t).status,
    slaDue: t.slaDue ?? null,
    updatedAt: t.updatedAt,
  }));
  const me = new Set(viewer.addresses);
  const rows = all.filter(
    (r) =>
      (filters.state === 'all' || (filters.state === 'active' ? !isFinished(r.state as Ticket['state']) : r.state === filters.state)) &&
      (!filters.priority || r.priority === filters.priority) &&
      (!filters.assignee ||
        (filters.assignee === 'me' ? !!r.assignee && me.has(r.assignee.address) : filters.assignee === 'nobody' ? !r.assignee : r.assignee?.address === filters.assignee)) &&
      (!filters.sla || (filters.sla === 'overdue' ? r.sla === 'overdue' : r.sla === 'due' || r.sla === 'overdue')),
  );
  rows.sort(byUrgency);
  const assignees = new Map<string, { address: string; name: string }>();
  for (const r of all) if (r.assignee) assignees.set(r.assignee.address, r.assignee);
  return {
    unit: { key: unit.key, name: unit.name },
    units: viewer.units.map((k) => ({ key: k, name: ctx.units.get(k)?.name ?? k })),
    filters,
    rows: rows.slice(0, SHOWN),
    total: rows.length,
    counters: TICKET_STATES.map((state) => ({ state, count: all.filter((r) => r.state === state).length })),
    assignees: [...assignees.values()].sort((a, b) => a.address.localeCompare(b.address)),
  };
}
