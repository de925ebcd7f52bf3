import type { ArticleAttachment } from '../../db/models/article.ts';
import type { TicketEvent } from '../../db/models/engine.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import type { DomainContext } from '../context.ts';
import { agentAction, mayAct, refusal, type AgentAction } from '../engine/actions.ts';
import { currentTicket } from '../engine/transition.ts';
import { addArticle } from '../tickets.ts';
import { roleOn, type Viewer } from './access.ts';
import { agentAddress, appliedSince } from './agent-view.ts';
import { actorOf, FormError, storeUploads, ticketForViewer, type Upload } from './web-tickets.ts';

export type { AgentAction };

/** What the portal's agent forms can do besides a public reply (replyFromWeb). */
export const WEB_AGENT_ACTIONS = ['note', 'waiting', 'take', 'assign', 'priority', 'hold', 'solve', 'close', 'reopen'] as const;
export type WebAgentActionKind = (typeof WEB_AGENT_ACTIONS)[number];

/** An agent's form, already checked by the portal (http/forms). */
export interface WebAgentInput {
  action: AgentAction;
  /** Words that go with it: a note, a question, a solution, a handover comment ('' for none). */
  text: string;
  /** Random id of the page the form was on: pressing twice acts once. */
  submission: string;
  /** The ticket version the page showed. */
  version: number;
  attachments: Upload[];
  /** Files kept from an earlier, rejected submission of the same form (already stored). */
  held?: ArticleAttachment[];
}

export type WebAgentResult =
  | { ok: true; action: AgentAction; ticket: Ticket; /** whether this agent may still act on it (an assignment may hand it away) */ stillActs: boolean }
  | { ok: false; reason: string; /** what others changed since the page was shown */ meanwhile: TicketEvent[]; /** the words were stored as an internal note that says it was not sent */ textKept: boolean };

/** Whose words are kept from the requester: a note, and the handover comment of an assignment. */
const INTERNAL: readonly string[] = ['note', 'assign'];

/**
 * An agent's button or form on the ticket page: the same agentAction as a mail command, keyed
 * by the page's submission id, and refused if the ticket changed since the page was shown.
 * Words that go with an action (note, question, solution, handover comment) are stored first,
 * as the mail side does, but only when the action is expected to succeed; if it is refused
 * after all, they stay on the ticket as an internal note that says so.
 * null: no such ticket for this viewer.
 */
export async function actFromWeb(ctx: DomainContext, viewer: Viewer, number: number, input: WebAgentInput): Promise<WebAgentResult | null> {
  const seen = await ticketForViewer(ctx, viewer, number);
  if (!seen) return null;
  if (roleOn(ctx, viewer, seen) !== 'agent') throw new FormError({ form: 'Only the agents of the ticket’s unit can do this.' });
  const { action, text, version } = input;
  const ticket = (await currentTicket(ctx, seen._id)) ?? seen;
  const address = agentAddress(ctx, viewer.addresses, ticket);
  const actor = actorOf(viewer, 'agent', address);
  const op = `web:${viewer.user._id}:${number}:${action.kind}:${input.submission}`;
  const origin = { actor, channel: 'web' as const, op, expectedVersion: version };
  const refused = async (result: { ticket: Ticket; reason: string }, textKept = false): Promise<WebAgentResult> => ({
    ok: false,
    reason: result.reason,
    meanwhile: result.ticket.version > version ? await appliedSince(ctx, result.ticket._id, version) : [],
    textKept,
  });
  const done = (t: Ticket): WebAgentResult => ({ ok: true, action, ticket: t, stillActs: mayAct(ctx, t, address) });
  if (!mayAct(ctx, ticket, address) && action.kind === 'note') {
    // A note is no transition (the engine logs none): it is refused here.
    return { ok: false, reason: `you are not an agent of ${ctx.units.get(ticket.su)?.name ?? ticket.su} or ${ctx.units.entry.name}`, meanwhile: [], textKept: false };
  }
  const held = input.held ?? [];
  const withText = ['note', 'waiting', 'solve', 'assign'].includes(action.kind) && !!(text || input.attachments.length || held.length);
  // Already done by this very submission (pressed twice): nothing to store or check again.
  const repeated = ticket.recentOps.some((o) => o.op === op);
  const expectRefusal = !repeated && action.kind !== 'note' && (!mayAct(ctx, ticket, address) || ticket.version !== version || refusal(ctx, ticket, action, actor) !== null);
  if (!withText || expectRefusal) {
    // Refused (and logged as refused) without storing words that would then never be sent.
    const result = await agentAction(ctx, ticket, action, origin, null);
    if (result && !result.ok) return refused(result);
    return done(result?.ticket ?? ticket);
  }
  const { article } = await addArticle(ctx, ticket, {
    key: op,
    direction: 'in',
    authorRole: 'agent',
    channel: 'web',
    from: { address: address ?? '', name: viewer.user.name },
    subject: ticket.subject,
    text,
    attachments: [...held, ...(await storeUploads(ctx, input.attachments))],
    authorSub: viewer.user._id,
    internal: INTERNAL.includes(action.kind),
  });
  const result = await agentAction(ctx, ticket, action, origin, article);
  if (result && !result.ok) {
    // Lost a race between the check above and the transition: the words were sent to nobody.
    await ctx.store.models.Article.updateOne({ _id: article._id }, { $set: { internal: true, flag: `not sent: ${result.reason}` } });
    return refused(result, true);
  }
  return done(result?.ticket ?? ticket);
}
