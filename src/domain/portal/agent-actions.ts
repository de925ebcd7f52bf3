import { PRIORITIES, type Priority, type Ticket } from '../../db/models/ticket.ts';
import type { DomainContext } from '../context.ts';
import { agentAction, mayAct, refusal, type AgentAction } from '../engine/actions.ts';
import { currentTicket } from '../engine/transition.ts';
import { addArticle } from '../tickets.ts';
import { roleOn, type Viewer } from './access.ts';
import { agentAddress, changesSince } from './agent-view.ts';
import { actorOf, FormError, storeUploads, SUBMISSION, ticketForViewer, type Upload } from './web-tickets.ts';

/** What the portal's agent buttons and forms can do (a public reply has its own form). */
export const WEB_AGENT_ACTIONS = ['note', 'waiting', 'take', 'assign', 'priority', 'hold', 'solve', 'close', 'reopen'] as const;
export type WebAgentActionKind = (typeof WEB_AGENT_ACTIONS)[number];

export interface WebAgentInput {
  action: string;
  /** Random id of the page the form was on: pressing twice acts once. */
  submission: string;
  /** The ticket version the page showed. */
  version: string;
  text: string;
  su: string;
  priority: string;
  attachments: Upload[];
}

export type WebAgentResult = { ok: true; done: string; ticket: Ticket } | { ok: false; reason: string };

/** Actions whose text is stored first and travels with them (to the unit for a note, else to the requester). */
const TEXT_NEEDED: Partial<Record<WebAgentActionKind, string>> = {
  note: 'Write the note.',
  waiting: 'Write what you need to know from the requester.',
  solve: 'Write the solution.',
};

function doneMessage(ctx: DomainContext, action: AgentAction): string {
  switch (action.kind) {
    case 'note':
      return 'Your internal note was added; the unit was told by mail. The requester does not see it.';
    case 'waiting':
      return 'The requester was asked for information; the ticket waits for their reply.';
    case 'take':
      return 'You took the ticket.';
    case 'assign':
      return `The ticket was assigned to ${ctx.units.get(action.su)?.name ?? action.su}.`;
    case 'priority':
      return `The priority is now ${action.priority}.`;
    case 'hold':
      return 'The ticket is on hold.';
    case 'solve':
      return 'The ticket is solved; the solution was mailed to the requester.';
    case 'close':
      return 'The ticket is closed.';
    case 'reopen':
      return 'The ticket is reopened.';
    case 'reply':
      return 'Your reply was added and mailed.';
  }
}

/**
 * The refusal in words: when the ticket changed since the page was shown, what changed and
 * who did it (the engine's own wording of a lost race names fields, not people's words).
 */
async function explain(ctx: DomainContext, ticket: Ticket, seenVersion: number, reason: string): Promise<string> {
  if (ticket.version <= seenVersion) return reason;
  const meanwhile = await changesSince(ctx, ticket._id, seenVersion);
  if (!meanwhile.length) return reason;
  if (/^already (assigned|changed \()/.test(reason) && / by .* at \d{4}-/.test(reason)) return `already ${meanwhile.join('; then ')}`;
  return `${reason}; since you opened the page, the ticket was ${meanwhile.join('; then ')}`;
}

/** Checks the form; every problem is named by its field, nothing is changed. */
function validate(ctx: DomainContext, input: WebAgentInput): { action: AgentAction; text: string; version: number } {
  const errors: Record<string, string> = {};
  const kind = input.action as WebAgentActionKind;
  const text = input.text.replace(/\r\n/g, '\n').trim();
  if (!SUBMISSION.test(input.submission) || !/^\d{1,9}$/.test(input.version)) errors.form = 'The form expired: reload the page and try again.';
  let action: AgentAction | null = null;
  if (kind === 'assign') {
    if (!ctx.units.get(input.su)) errors.su = 'Choose one of the listed Support Units.';
    else action = { kind, su: input.su };
  } else if (kind === 'priority') {
    if (!(PRIORITIES as readonly string[]).includes(input.priority)) errors.priority = 'Choose one of the listed priorities.';
    else action = { kind, priority: input.priority as Priority };
  } else if ((WEB_AGENT_ACTIONS as readonly string[]).includes(kind)) action = { kind } as AgentAction;
  else errors.form = 'Unknown action.';
  const needed = TEXT_NEEDED[kind];
  if (needed && !text && !(kind === 'note' && input.attachments.length)) errors.text = needed;
  if (text.length > 100_000) errors.text = 'A text is at most 100,000 characters.';
  if (Object.keys(errors).length || !action) throw new FormError(Object.keys(errors).length ? errors : { form: 'Unknown action.' });
  return { action, text, version: Number(input.version) };
}

/**
 * An agent's button or form on the ticket page: the same agentAction as a mail command, keyed
 * by the page's submission id, and refused (with what happened meanwhile) if the ticket
 * changed since the page was shown. Words that go with an action (note, question, solution)
 * are stored first, as the mail side does, but only when the action is expected to succeed;
 * if it is refused after all, they stay on the ticket as an internal note that says so.
 * null: no such ticket for this viewer.
 */
export async function actFromWeb(ctx: DomainContext, viewer: Viewer, number: number, input: WebAgentInput): Promise<WebAgentResult | null> {
  const seen = await ticketForViewer(ctx, viewer, number);
  if (!seen) return null;
  if (roleOn(ctx, viewer, seen) !== 'agent') throw new FormError({ form: 'Only the agents of the ticket’s unit can do this.' });
  const { action, text, version } = validate(ctx, input);
  const ticket = (await currentTicket(ctx, seen._id)) ?? seen;
  const address = agentAddress(ctx, viewer.addresses, ticket);
  const actor = actorOf(viewer, 'agent', address);
  const op = `web:${viewer.user._id}:${number}:${action.kind}:${input.submission}`;
  const origin = { actor, channel: 'web' as const, op, expectedVersion: version };
  const unitName = ctx.units.get(ticket.su)?.name ?? ticket.su;
  if (!mayAct(ctx, ticket, address) && action.kind === 'note') {
    // A note is no transition (the engine logs none): it is refused here.
    return { ok: false, reason: `you are not an agent of ${unitName} or ${ctx.units.entry.name}` };
  }
  const withText = action.kind in TEXT_NEEDED;
  // Already done by this very submission (pressed twice): nothing to store or check again.
  const repeated = ticket.recentOps.some((o) => o.op === op);
  const expectRefusal = !repeated && action.kind !== 'note' && (!mayAct(ctx, ticket, address) || ticket.version !== version || refusal(ctx, ticket, action, actor) !== null);
  if (!withText || expectRefusal) {
    // Refused (and logged as refused) without storing words that would then never be sent.
    const result = await agentAction(ctx, ticket, action, origin, null);
    if (result && !result.ok) return { ok: false, reason: await explain(ctx, result.ticket, version, result.reason) };
    return { ok: true, done: doneMessage(ctx, action), ticket: result?.ticket ?? ticket };
  }
  const { article } = await addArticle(ctx, ticket, {
    key: op,
    direction: 'in',
    authorRole: 'agent',
    channel: 'web',
    from: { address: address ?? '', name: viewer.user.name },
    subject: ticket.subject,
    text,
    attachments: await storeUploads(ctx, input.attachments),
    authorSub: viewer.user._id,
    internal: action.kind === 'note',
  });
  const result = await agentAction(ctx, ticket, action, origin, article);
  if (result && !result.ok) {
    // Lost a race between the check above and the transition: the words were sent to nobody.
    await ctx.store.models.Article.updateOne({ _id: article._id }, { $set: { internal: true, flag: `not sent: ${result.reason}` } });
    return { ok: false, reason: `${await explain(ctx, result.ticket, version, result.reason)} (your text is kept on the ticket as an internal note)` };
  }
  return { ok: true, done: doneMessage(ctx, action), ticket: result?.ticket ?? ticket };
}
