import type { Article } from '../../db/models/article.ts';
import type { Actor, EventChannel, TicketEvent } from '../../db/models/engine.ts';
import { PRIORITIES, type Priority, type Ticket, type TicketState } from '../../db/models/ticket.ts';
import { formatTag } from '../../mail/parse/subject.ts';
import type { DomainContext } from '../context.ts';
import { relayAgentReply, tellRequester, tellUnit } from '../notify.ts';
import { addWorkingDays } from './calendar.ts';
import { transition, type TicketChange, type TimerSpec, type TransitionResult, type TransitionSpec } from './transition.ts';

/** The actions an agent takes on a ticket, by mail command or portal button alike. */
export const AGENT_ACTIONS = ['reply', 'note', 'waiting', 'take', 'assign', 'priority', 'hold', 'solve', 'close', 'reopen'] as const;
export type AgentActionKind = (typeof AGENT_ACTIONS)[number];

export type AgentAction =
  | { kind: 'reply' | 'note' | 'waiting' | 'take' | 'hold' | 'solve' | 'close' | 'reopen' }
  | { kind: 'assign'; su: string }
  | { kind: 'priority'; priority: Priority };

/** Who acts, how, and under which idempotency key. */
export interface ActionOrigin {
  actor: Actor;
  channel: EventChannel;
  /** Unique per operation: a mail's key plus the command's position, a form submission… */
  op: string;
  expectedVersion?: number;
}

const TERMINAL: readonly TicketState[] = ['closed', 'verified'];
/** States in which a ticket waits for nobody at the helpdesk (the SLA clock stops). */
export const FINISHED_STATES: readonly TicketState[] = ['solved', 'unsolved', 'verified', 'closed'];

export function isFinished(state: TicketState): boolean {
  return FINISHED_STATES.includes(state);
}

function unitName(ctx: DomainContext, key: string): string {
  return ctx.units.get(key)?.name ?? key;
}

function who(actor: Actor): string {
  return actor.name || actor.address || 'the helpdesk';
}

/** SLA: when the first response is due, counted from the ticket's creation. */
export function firstResponseDue(ctx: DomainContext, createdAt: Date, priority: Priority): Date {
  return addWorkingDays(createdAt, ctx.config.timers.firstResponse[priority]);
}

/** Whether an agent may act on the ticket: a member of its unit, or of First Line. */
export function mayAct(ctx: DomainContext, ticket: Pick<Ticket, 'su'>, address: string | null): boolean {
  if (!address) return false;
  const units = [ticket.su, ctx.units.entryKey];
  return units.some((u) => ctx.units.members(u).includes(address.toLowerCase()));
}

/** Why this action cannot be taken on the ticket as it is, or null. Shared by the mail pre-check and the transition. */
export function refusal(ctx: DomainContext, ticket: Ticket, action: AgentAction, actor: Actor): string | null {
  const state = ticket.state;
  if (action.kind === 'note') return null;
  if (TERMINAL.includes(state) && action.kind !== 'reply') return `the ticket is ${state}: nothing can change any more`;
  switch (action.kind) {
    case 'reply':
      return state === 'closed' ? 'the ticket is closed: the requester is no longer written to from it' : null;
    case 'take':
      if (ticket.assignee && ticket.assignee.address !== actor.address) return `already taken by ${ticket.assignee.name || ticket.assignee.address}`;
      if (ticket.assignee && state === 'in progress') return 'you have taken this ticket already';
      if (isFinished(state)) return `the ticket is ${state}: reopen it first`;
      return null;
    case 'assign': {
      if (!ctx.units.get(action.su)) return `there is no unit "${action.su}"; the units are: ${ctx.units.all().map((u) => u.key).join(', ')}`;
      if (action.su === ticket.su) return `already assigned to ${unitName(ctx, action.su)}`;
      if (isFinished(state)) return `the ticket is ${state}: reopen it first`;
      return null;
    }
    case 'priority':
      if (!PRIORITIES.includes(action.priority)) return `there is no priority "${action.priority}"; the priorities are: ${PRIORITIES.join(', ')}`;
      return action.priority === ticket.priority ? `the priority is ${action.priority} already` : null;
    case 'waiting':
      if (state === 'waiting for reply') return 'the ticket is waiting for the requester already';
      return isFinished(state) ? `the ticket is ${state}: reopen it first` : null;
    case 'hold':
      if (state === 'on hold') return 'the ticket is on hold already';
      return isFinished(state) ? `the ticket is ${state}: reopen it first` : null;
    case 'solve':
      return isFinished(state) ? `the ticket is ${state} already` : null;
    case 'close':
      return null;
    case 'reopen':
      return state === 'solved' || state === 'unsolved' ? null : `only a solved or unsolved ticket can be reopened (it is ${state})`;
  }
}

function stateTimers(ctx: DomainContext, state: TicketState | undefined): TimerSpec[] {
  const now = ctx.now();
  const t = ctx.config.timers;
  if (state === 'waiting for reply') {
    return [
      ...t.waitingReminders.map((days, i) => ({ kind: `remind-${i + 1}`, due: addWorkingDays(now, days) })),
      { kind: 'unsolved', due: addWorkingDays(now, t.waitingUnsolved) },
    ];
  }
  if (state === 'solved') return [{ kind: 'close-solved', due: addWorkingDays(now, t.solvedClose) }];
  return [];
}

/** The ticket fields an agent's action sets. */
function changeFor(ctx: DomainContext, ticket: Ticket, action: AgentAction, actor: Actor): TicketChange {
  const now = ctx.now();
  const answered = ticket.firstResponseAt ? {} : { firstResponseAt: now, slaDue: null };
  switch (action.kind) {
    case 'reply':
      return { ...answered, ...(['new', 'assigned', 'reopened'].includes(ticket.state) ? { state: 'in progress' as const } : {}) };
    case 'note':
      return {};
    case 'take':
      return { assignee: { address: actor.address ?? '', name: actor.name }, state: 'in progress' };
    case 'assign':
      return { su: action.su, state: 'assigned', assignee: null, unitsSeen: [...new Set([...(ticket.unitsSeen ?? []), ticket.su, action.su])] };
    case 'priority':
      return { priority: action.priority, ...(ticket.firstResponseAt ? {} : { slaDue: firstResponseDue(ctx, ticket.createdAt, action.priority) }) };
    case 'waiting':
      return { ...answered, state: 'waiting for reply' };
    case 'hold':
      return { state: 'on hold' };
    case 'solve':
      return { ...answered, state: 'solved', solvedAt: now };
    case 'close':
      return { state: 'closed' };
    case 'reopen':
      return { state: 'reopened', solvedAt: null };
  }
}

/** Whether a public reply changes anything on the ticket (else it needs no transition). */
function replyChanges(ticket: Ticket): boolean {
  return !ticket.firstResponseAt || ['new', 'assigned', 'reopened'].includes(ticket.state);
}

/**
 * Applies an agent's action: the transition (checked, logged, once) and then the mails it
 * causes. `article` is the agent's words that go with it (a note, the question, the solution),
 * already stored. Returns the transition's result; on refusal nothing was changed or sent.
 */
export async function agentAction(ctx: DomainContext, ticket: Ticket, action: AgentAction, origin: ActionOrigin, article: Article | null = null): Promise<TransitionResult | null> {
  const spec: TransitionSpec = {
    action: action.kind,
    op: origin.op,
    actor: origin.actor,
    channel: origin.channel,
    articleId: article?._id ?? null,
    check: (t) => (mayAct(ctx, t, origin.actor.address) ? refusal(ctx, t, action, origin.actor) : `${who(origin.actor)} is not an agent of ${unitName(ctx, t.su)} or ${unitName(ctx, ctx.units.entryKey)}`),
    change: (t) => changeFor(ctx, t, action, origin.actor),
    timers: (t, change) => [
      ...(change.state && change.state !== t.state ? stateTimers(ctx, change.state) : []),
      ...(action.kind === 'priority' && change.slaDue ? [{ kind: 'sla', due: change.slaDue }] : []),
    ],
    onConflict: 'refuse',
    ...(origin.expectedVersion !== undefined ? { expectedVersion: origin.expectedVersion } : {}),
  };
  if (action.kind === 'note' || (action.kind === 'reply' && !replyChanges(ticket) && origin.expectedVersion === undefined)) {
    // Nothing on the ticket changes: no transition, only the mail.
    await mailsFor(ctx, ticket, action, origin, article, null);
    return null;
  }
  const result = await transition(ctx, ticket._id, spec);
  if (result.ok) await mailsFor(ctx, result.ticket, action, origin, article, result.event);
  return result;
}

/** The mails an applied action causes, each keyed so that a re-run sends none twice. */
async function mailsFor(ctx: DomainContext, ticket: Ticket, action: AgentAction, origin: ActionOrigin, article: Article | null, event: TicketEvent | null): Promise<void> {
  const key = event?._id ?? String(article?._id ?? origin.op);
  const actor = origin.actor;
  const tag = formatTag(ctx.config.ticketPrefix, ticket.number);
  switch (action.kind) {
    case 'reply':
      if (article) await relayAgentReply(ctx, ticket, article);
      return;
    case 'note':
      if (article) await tellUnit(ctx, ticket, { key, kind: 'note', headline: `Internal note on ${tag} by ${who(actor)} (not sent to the requester)`, article, exclude: [actor.address] });
      return;
    case 'assign': {
      const from = event?.changes.find((c) => c.field === 'su')?.from as string | undefined;
      await tellUnit(ctx, ticket, { key, kind: 'assigned', headline: `Ticket ${tag} was assigned to ${unitName(ctx, ticket.su)} by ${who(actor)}`, article, exclude: [actor.address] });
      if (from && from !== ticket.su) {
        await tellUnit(ctx, ticket, { key, kind: 'moved', unit: from, headline: `Ticket ${tag} has moved from ${unitName(ctx, from)} to ${unitName(ctx, ticket.su)} (by ${who(actor)})`, exclude: [actor.address, ...ctx.units.members(ticket.su)] });
      }
      await tellRequester(ctx, ticket, { key, kind: 'assigned-info', text: null, lines: [`Your request has been passed to ${unitName(ctx, ticket.su)}, who will continue with it. You need not do anything.`] });
      return;
    }
    case 'waiting':
      await tellRequester(ctx, ticket, {
        key,
        kind: 'request-info',
        text: article?.text || null,
        fromName: actor.name || 'Helpdesk',
        article,
        lines: ['We need more information from you to go on: please reply to this mail.'],
      });
      return;
    case 'solve':
      await tellRequester(ctx, ticket, {
        key,
        kind: 'solution',
        text: article?.text || null,
        fromName: actor.name || 'Helpdesk',
        article,
        lines: solutionLines(ctx, ticket),
        verifyUrl: `${ctx.config.publicUrl}/tickets/${ticket.number}/verify`,
      });
      return;
    case 'hold':
      await tellRequester(ctx, ticket, { key, kind: 'on-hold', text: article?.text || null, fromName: article?.text ? actor.name || 'Helpdesk' : undefined, lines: ['Your ticket has been put on hold; we will come back to you.'] });
      return;
    case 'close':
      await tellRequester(ctx, ticket, { key, kind: 'closed', text: article?.text || null, fromName: article?.text ? actor.name || 'Helpdesk' : undefined, lines: ['Your ticket has been closed. If you write again, a new ticket is opened.'] });
      return;
    case 'take':
    case 'priority':
    case 'reopen':
      if (article?.text) await relayAgentReply(ctx, ticket, article);
      if (action.kind === 'reopen') await tellUnit(ctx, ticket, { key, kind: 'reopened', headline: `Ticket ${tag} was reopened by ${who(actor)}`, exclude: [actor.address] });
      return;
  }
}

export function solutionLines(ctx: DomainContext, ticket: Ticket): string[] {
  return [
    'This is the solution to your request; the ticket is now solved.',
    `If it works for you, reply with the single word "verified", or confirm it at ${ctx.config.publicUrl}/tickets/${ticket.number}/verify.`,
    `If it does not, simply reply within ${ctx.config.timers.reopenWindow} working days and the ticket is reopened. Without a reply it is closed after ${ctx.config.timers.solvedClose} working days.`,
  ];
}

/** The requester's side: verify a solution (→ verified, then closed at once). */
export async function verifyByRequester(ctx: DomainContext, ticket: Ticket, origin: ActionOrigin): Promise<TransitionResult> {
  const result = await transition(ctx, ticket._id, {
    action: 'verify',
    op: origin.op,
    actor: origin.actor,
    channel: origin.channel,
    check: (t) => (t.state === 'solved' ? null : t.state === 'verified' || t.state === 'closed' ? `the ticket is ${t.state} already` : `only a solved ticket can be verified (it is ${t.state})`),
    change: () => ({ state: 'verified' }),
    onConflict: 'retry',
  });
  if (!result.ok) return result;
  const closed = await transition(ctx, ticket._id, {
    action: 'close',
    op: `${origin.op}:close`,
    actor: { address: null, name: '', sub: null, role: 'system' },
    channel: 'system',
    check: (t) => (t.state === 'verified' ? null : `the ticket is ${t.state}`),
    change: () => ({ state: 'closed' }),
    onConflict: 'retry',
  });
  const tag = formatTag(ctx.config.ticketPrefix, ticket.number);
  await tellUnit(ctx, closed.ticket, { key: result.event._id, kind: 'verified', headline: `The requester confirmed the solution of ${tag}: verified and closed` });
  return closed.ok ? closed : result;
}

/**
 * What a requester's reply does to the state: waiting → in progress; solved or unsolved within
 * the reopen window → reopened. `null` when it changes nothing. (After the window, or on a
 * closed ticket, the caller opens a new ticket instead.)
 */
export async function requesterReplied(ctx: DomainContext, ticket: Ticket, origin: ActionOrigin): Promise<TransitionResult | null> {
  if (ticket.state !== 'waiting for reply' && ticket.state !== 'solved' && ticket.state !== 'unsolved') return null;
  return transition(ctx, ticket._id, {
    action: ticket.state === 'waiting for reply' ? 'answered' : 'reopen',
    op: origin.op,
    actor: origin.actor,
    channel: origin.channel,
    check: (t) => (t.state === 'waiting for reply' || t.state === 'solved' || t.state === 'unsolved' ? null : 'nothing to change'),
    change: (t) => (t.state === 'waiting for reply' ? { state: 'in progress' } : { state: 'reopened', solvedAt: null }),
    onConflict: 'retry',
  });
}

/** Whether a reply to this ticket comes too late to reopen it (the caller then opens a new ticket). */
export function pastReopenWindow(ctx: DomainContext, ticket: Ticket): boolean {
  if (ticket.state === 'closed' || ticket.state === 'verified') return true;
  if (ticket.state !== 'solved' && ticket.state !== 'unsolved') return false;
  const since = ticket.state === 'solved' ? (ticket.solvedAt ?? ticket.stateSince) : ticket.stateSince;
  return !!since && addWorkingDays(new Date(since), ctx.config.timers.reopenWindow) <= ctx.now();
}
