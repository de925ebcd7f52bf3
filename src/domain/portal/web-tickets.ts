import type { Article, ArticleAttachment } from '../../db/models/article.ts';
import { senderMarks, unverifiedCount, type SenderMark } from './sender-marks.ts';
import { PRIORITIES, TICKET_STATES, type Priority, type Ticket } from '../../db/models/ticket.ts';

export { PRIORITIES, TICKET_STATES };
export type { Article, ArticleAttachment, Priority };
import { HelpgateError } from '../../errors/errors.ts';
import type { DomainContext } from '../context.ts';
import { acknowledge, notifyUnit } from '../notify.ts';
import { recordInTicketList } from '../ticket-list.ts';
import { addArticle, createTicket, findTicketByNumber, ticketArticles } from '../tickets.ts';
import { maySee, roleOn, type Viewer } from './access.ts';
import { agentAddress, agentTicketView, articleActions, type AgentTicketView } from './agent-view.ts';
import type { Actor } from '../../db/models/engine.ts';
import { agentAction, isFinished, mayAct, pastReopenWindow, refusal, requesterReplied, verifyByRequester } from '../engine/actions.ts';
import { addWorkingDays } from '../engine/calendar.ts';
import { currentTicket, ticketEvents, transition, type TransitionResult } from '../engine/transition.ts';

/** A form value that cannot be accepted; `field` names the form field. */
export class FormError extends HelpgateError {
  constructor(
    readonly errors: Record<string, string>,
  ) {
    super('invalid-form', `invalid form: ${Object.keys(errors).join(', ')}`, { fields: Object.keys(errors) });
  }
}

export interface Upload {
  filename: string;
  contentType: string;
  content: Buffer;
}

/** A new-ticket form, already checked by the portal (http/forms). */
export interface NewWebTicket {
  /** Random id put in the form when it was shown: submitting twice opens one ticket. */
  submission: string;
  subject: string;
  category: string;
  description: string;
  priority: Priority;
  attachments: Upload[];
  /** Files kept from an earlier, rejected submission of the same form (already stored). */
  held?: ArticleAttachment[];
}

/** Stores uploaded files as blobs; what an article (or a form shown again) refers to. */
export async function storeUploads(ctx: DomainContext, uploads: Upload[]): Promise<ArticleAttachment[]> {
  const out: ArticleAttachment[] = [];
  for (const u of uploads) {
    const sha256 = await ctx.store.blobs.put(u.content);
    out.push({ filename: u.filename || 'attachment', contentType: u.contentType || 'application/octet-stream', size: u.content.length, sha256, contentId: null, inline: false });
  }
  return out;
}

function authorOf(viewer: Viewer): { address: string; name: string } {
  return { address: viewer.addresses[0] ?? viewer.user.email ?? '', name: viewer.user.name };
}

/**
 * Opens a ticket from the portal: the same createTicket, addArticle, acknowledgement and unit
 * notification as a mail to the helpdesk. The requester is the person's first bound address.
 */
export async function openTicketFromWeb(ctx: DomainContext, viewer: Viewer, input: NewWebTicket): Promise<Ticket> {
  const form = input;
  const author = authorOf(viewer);
  if (!author.address) throw new FormError({ form: 'Your account has no confirmed mail address yet: add one under Account first.' });
  const key = `web:${viewer.user._id}:new:${input.submission}`;
  const { ticket } = await createTicket(ctx, {
    originKey: key,
    ownerSub: viewer.user._id,
    subject: form.subject,
    requester: author,
    participants: [],
    su: ctx.units.entryKey,
    priority: form.priority,
    category: form.category,
    channel: 'web',
  });
  const attachments = [...(input.held ?? []), ...(await storeUploads(ctx, input.attachments))];
  const { article, created } = await addArticle(ctx, ticket, {
    key,
    direction: 'in',
    authorRole: 'requester',
    channel: 'web',
    from: author,
    subject: form.subject,
    text: form.description,
    attachments,
    authorSub: viewer.user._id,
  });
  await acknowledge(ctx, ticket, article, { articleIsNew: created });
  await notifyUnit(ctx, ticket, article, 'new');
  return (await findTicketByNumber(ctx, ticket.number)) ?? ticket;
}

/** The ticket with this number if the viewer may see it; otherwise the same answer as "no such ticket". */
export async function ticketForViewer(ctx: DomainContext, viewer: Viewer, number: number): Promise<Ticket | null> {
  const ticket = await findTicketByNumber(ctx, number);
  if (!ticket || !maySee(ctx, viewer, ticket)) return null;
  return ticket;
}

export interface TicketPage {
  ticket: Ticket;
  /** Without internal notes unless the viewer is an agent. */
  articles: Article[];
  role: 'agent' | 'requester' | 'participant';
  /** The agent's side (audit log, SLA clock, timers, actions); null for everyone else. */
  agent: AgentTicketView | null;
  /** The requester's buttons that apply now. */
  requester: { solve: boolean; reopen: boolean; verify: boolean } | null;
  /** The action each article was written with (a solution, a request for information…), by article id. */
  articleActions: Record<string, string>;
  /** For agents: who sent each received mail, as far as it was proven; and how many nothing vouched for. */
  senders: { marks: Record<string, SenderMark>; unverified: number } | null;
}

export async function ticketPage(ctx: DomainContext, viewer: Viewer, number: number): Promise<TicketPage | null> {
  const seen = await ticketForViewer(ctx, viewer, number);
  if (!seen) return null;
  const role = roleOn(ctx, viewer, seen);
  // The version an agent's forms carry must be the latest one (a lost ticket write is replayed).
  const ticket = role === 'agent' ? ((await currentTicket(ctx, seen._id)) ?? seen) : seen;
  // Showing a ticket refreshes its entry in the owner's list (a cache that may lag).
  await recordInTicketList(ctx, ticket);
  const [all, events] = await Promise.all([ticketArticles(ctx, ticket), ticketEvents(ctx, ticket._id)]);
  const articles = role === 'agent' ? all : all.filter((a) => !a.internal);
  const agent = role === 'agent' ? await agentTicketView(ctx, ticket, actorOf(viewer, 'agent', agentAddress(ctx, viewer.addresses, ticket)), events) : null;
  const requester =
    role === 'requester'
      ? { solve: !isFinished(ticket.state), reopen: (ticket.state === 'solved' || ticket.state === 'unsolved') && !pastReopenWindow(ctx, ticket), verify: ticket.state === 'solved' }
      : null;
  const senders = role === 'agent' ? { marks: senderMarks(articles), unverified: unverifiedCount(articles) } : null;
  return { ticket, articles, role, agent, requester, articleActions: articleActions(events), senders };
}

/** A reply written on the portal: stored as an article and mailed exactly as a mail reply would be. */
export async function replyFromWeb(
  ctx: DomainContext,
  viewer: Viewer,
  number: number,
  input: { submission: string; text: string; attachments: Upload[]; held?: ArticleAttachment[] },
): Promise<Ticket | null> {
  const ticket = await ticketForViewer(ctx, viewer, number);
  if (!ticket) return null;
  const text = input.text;
  const role = roleOn(ctx, viewer, ticket);
  const address = role === 'agent' ? agentAddress(ctx, viewer.addresses, ticket) : (viewer.addresses[0] ?? null);
  // An agent of a unit the ticket has left may read it, but its unit and First Line answer it.
  if (role === 'agent' && !mayAct(ctx, ticket, address)) throw new FormError({ form: `Only ${ctx.units.get(ticket.su)?.name ?? ticket.su} or ${ctx.units.entry.name} can answer this ticket now.` });
  // The same rules as for mail: nothing is added to a closed ticket from the web either.
  const current = (await currentTicket(ctx, ticket._id)) ?? ticket;
  if (role === 'agent') {
    const why = refusal(ctx, current, { kind: 'reply' }, actorOf(viewer, 'agent'));
    if (why) throw new FormError({ text: `Not sent: ${why}.` });
  } else if (pastReopenWindow(ctx, current)) {
    throw new FormError({ text: `This ticket is ${current.state === 'closed' ? 'closed' : 'past its reopen window'}: open a new ticket (or write to the helpdesk) and mention its number, ${current.number}.` });
  }
  const attachments = [...(input.held ?? []), ...(await storeUploads(ctx, input.attachments))];
  const { article } = await addArticle(ctx, ticket, {
    key: `web:${viewer.user._id}:${number}:reply:${input.submission}`,
    direction: 'in',
    authorRole: role,
    channel: 'web',
    from: role === 'agent' ? { address: address ?? '', name: viewer.user.name } : authorOf(viewer),
    subject: ticket.subject,
    text,
    attachments,
    authorSub: viewer.user._id,
  });
  const fresh = (await currentTicket(ctx, ticket._id)) ?? ticket;
  const origin = { actor: actorOf(viewer, role, address), channel: 'web' as const, op: `web:${viewer.user._id}:${number}:reply:${input.submission}` };
  if (role === 'agent') {
    const result = await agentAction(ctx, fresh, { kind: 'reply' }, origin, article);
    if (result && !result.ok) {
      await ctx.store.models.Article.updateOne({ _id: article._id }, { $set: { internal: true, flag: `not sent: ${result.reason}` } });
      throw new FormError({ text: `Not sent: ${result.reason}. Your text is kept on the ticket as an internal note.` });
    }
  } else {
    const moved = await requesterReplied(ctx, fresh, origin);
    await notifyUnit(ctx, moved?.ticket ?? fresh, article, 'followup');
  }
  return findTicketByNumber(ctx, number);
}

/** The viewer as the actor of a transition; `address`: the one they act with (an agent's unit address). */
export function actorOf(viewer: Viewer, role: Actor['role'], address: string | null = null): Actor {
  return { address: address ?? viewer.addresses[0] ?? viewer.user.email ?? null, name: viewer.user.name, sub: viewer.user._id, role };
}

/** The requester's own buttons: mark solved, reopen (within the window), confirm the solution. */
export async function setStateByRequester(ctx: DomainContext, viewer: Viewer, number: number, action: 'solve' | 'reopen' | 'verify', submission = ''): Promise<Ticket | null> {
  const ticket = await ticketForViewer(ctx, viewer, number);
  if (!ticket) return null;
  if (roleOn(ctx, viewer, ticket) !== 'requester') throw new FormError({ form: 'Only the requester can do this.' });
  const origin = { actor: actorOf(viewer, 'requester'), channel: 'web' as const, op: `web:${viewer.user._id}:${number}:${action}:${submission || ticket.version}` };
  let result: TransitionResult | null;
  if (action === 'verify') result = await verifyByRequester(ctx, ticket, origin);
  else if (action === 'reopen') {
    if (pastReopenWindow(ctx, ticket)) throw new FormError({ form: 'This ticket can no longer be reopened: write to the helpdesk, or open a new ticket, and mention its number.' });
    result = await requesterReplied(ctx, ticket, origin);
  } else {
    result = await transition(ctx, ticket._id, {
      action: 'solve',
      op: origin.op,
      actor: origin.actor,
      channel: 'web',
      check: (t) => (isFinished(t.state) ? `the ticket is ${t.state} already` : null),
      change: () => ({ state: 'solved', solvedAt: ctx.now() }),
      timers: () => [{ kind: 'close-solved', due: addWorkingDays(ctx.now(), ctx.config.timers.solvedClose) }],
      onConflict: 'retry',
    });
  }
  if (result && !result.ok) throw new FormError({ form: `Not done: ${result.reason}.` });
  return findTicketByNumber(ctx, number);
}

/** An attachment of a ticket the viewer may see, by article and position. */
export async function attachmentForViewer(
  ctx: DomainContext,
  viewer: Viewer,
  number: number,
  articleId: string,
  index: number,
): Promise<{ meta: ArticleAttachment; content: Buffer } | null> {
  const ticket = await ticketForViewer(ctx, viewer, number);
  if (!ticket || !/^[0-9a-f]{24}$/.test(articleId)) return null;
  const article = await ctx.store.models.Article.findById(articleId).lean<Article>();
  if (!article || String(article.ticketId) !== String(ticket._id)) return null;
  // Internal notes, and what they carry, exist for agents only.
  if (article.internal && roleOn(ctx, viewer, ticket) !== 'agent') return null;
  const meta = article.attachments[index];
  if (!meta) return null;
  const content = await ctx.store.blobs.get(meta.sha256);
  return content ? { meta, content } : null;
}
