import type { Article } from '../db/models/article.ts';
import type { Ticket } from '../db/models/ticket.ts';
import { LOOP_HEADER } from '../mail/parse/automated.ts';
import { formatTag } from '../mail/parse/subject.ts';
import { enqueueMails, isQueued, messageIdFor, type Enqueued, type OutboundDraft } from '../mail/send/outbox.ts';
import type { DomainContext } from './context.ts';
import { withinRateLimit } from './rate-limit.ts';
import { replyAddressFor } from './engine/reply-tokens.ts';
import { withBounceAddresses } from './outbound/verp.ts';
import { registerThreadIds } from './tickets.ts';

const HOUR = 3600_000;
/** Told to agents in every notification. */
export const AGENT_COMMANDS_HELP =
  'Reply to answer the requester. Commands, each on its own line at the top of your reply: /note (the rest is an internal note), /assign <unit>, /take, /waiting (ask the requester for information), /solve (the rest is the solution), /hold, /close, /priority <less urgent|urgent|very urgent|top priority>.';
/** Text of the triggering article quoted in a notification, at most this long. */
const MAX_QUOTED_TEXT = 20_000;

export function formatAddress(name: string, address: string): string {
  return name ? `"${name.replace(/["\\]/g, '\\$&')}" <${address}>` : address;
}

function ticketView(ctx: DomainContext, ticket: Ticket) {
  const tag = formatTag(ctx.config.ticketPrefix, ticket.number);
  return {
    number: ticket.number,
    tag,
    subject: ticket.subject || '(no subject)',
    url: `${ctx.config.publicUrl}/tickets/${ticket.number}`,
    unit: ctx.units.get(ticket.su)?.name ?? ticket.su,
    requester: ticket.requester,
    referredTicket: ticket.referredTicket ? formatTag(ctx.config.ticketPrefix, ticket.referredTicket) : null,
    previousTicket: ticket.previousTicket ? formatTag(ctx.config.ticketPrefix, ticket.previousTicket) : null,
    state: ticket.state,
    priority: ticket.priority,
    assignee: ticket.assignee ? ticket.assignee.name || ticket.assignee.address : null,
  };
}

function articleView(article: Article) {
  const text = article.text.length > MAX_QUOTED_TEXT ? `${article.text.slice(0, MAX_QUOTED_TEXT)}\n[…]` : article.text;
  // An unverified sender is said so to the unit (domain/ingest/sender-trust.ts).
  const unverified = article.senderAuth?.status === 'unverified' ? article.senderAuth.reason : null;
  return { from: article.from, text, attachments: article.attachments.map((a) => a.filename ?? 'attachment'), unverified };
}

interface SendSpec {
  kind: string;
  /** Idempotency key of this mail; default: article, kind and first recipient. */
  key?: string;
  /** Default: the helpdesk address. Agents get their own reply address (engine/reply-tokens.ts). */
  replyTo?: string;
  template: string;
  to: string[];
  cc?: string[];
  fromName: string;
  /** true for mail no person wrote (acknowledgements, notifications): RFC 3834 headers. */
  automatic: boolean;
  inReplyTo: string | null;
  extra?: object;
}

/** Renders one mail (keyed by article, kind and first recipient unless the spec says otherwise). */
export function draftMail(ctx: DomainContext, ticket: Ticket, article: Article | null, spec: SendSpec): OutboundDraft {
  const { helpdesk } = ctx.config;
  const view = { helpdesk, ticket: ticketView(ctx, ticket), article: article ? articleView(article) : null, commands: AGENT_COMMANDS_HELP, ...spec.extra };
  const { text, html } = ctx.composer.render(spec.template, view);
  const headers = [{ key: LOOP_HEADER, value: helpdesk.address }];
  if (spec.automatic) {
    headers.push({ key: 'Auto-Submitted', value: spec.kind === 'ack' ? 'auto-replied' : 'auto-generated' });
    headers.push({ key: 'X-Auto-Response-Suppress', value: 'All' });
  }
  const references = [...new Set([ticket.rootMessageId, spec.inReplyTo].filter((x): x is string => !!x))];
  return {
    key: spec.key ?? `${article!._id}:${spec.kind}:${spec.to.join(',')}`,
    kind: spec.kind,
    ticketId: ticket._id,
    ticketNumber: ticket.number,
    articleId: article?._id ?? null,
    envelopeFrom: helpdesk.address,
    from: formatAddress(spec.fromName, helpdesk.address),
    to: spec.to,
    cc: spec.cc ?? [],
    replyTo: spec.replyTo ?? helpdesk.address,
    subject: `${view.ticket.tag} ${view.ticket.subject}`,
    inReplyTo: spec.inReplyTo,
    references,
    headers,
    text,
    html,
  };
}

/**
 * Enqueues the mails of one event together (one write for the mails, one for their queue
 * entries) and records their Message-IDs, with `alsoThreadIds` (e.g. the Message-ID of the mail
 * that caused them), in one more write.
 */
export async function sendMails(ctx: DomainContext, ticket: Ticket, drafts: OutboundDraft[], alsoThreadIds: (string | null)[] = []): Promise<Enqueued[]> {
  const enqueued = await enqueueMails(ctx.store, ctx.config.helpdesk.domain, await withBounceAddresses(ctx, drafts));
  await registerThreadIds(ctx, ticket, [...alsoThreadIds.map((id) => ({ id, ours: false })), ...enqueued.map((e) => ({ id: e.mail.messageId, ours: true }))]);
  if (enqueued.some((e) => e.created)) ctx.mailQueued();
  return enqueued;
}

/** Renders, enqueues once and records the Message-ID. */
export async function send(ctx: DomainContext, ticket: Ticket, article: Article | null, spec: SendSpec): Promise<Enqueued> {
  return (await sendMails(ctx, ticket, [draftMail(ctx, ticket, article, spec)]))[0]!;
}

/**
 * The acknowledgement to the requester of a new ticket, at most N per sender per hour; null
 * when none is to be sent. `articleIsNew`: the article was inserted by this very run, so no
 * acknowledgement can be queued for it yet and the look-up is skipped.
 */
export async function planAcknowledgement(ctx: DomainContext, ticket: Ticket, article: Article, opts: { articleIsNew?: boolean } = {}): Promise<OutboundDraft | null> {
  const to = ticket.requester.address;
  const key = ackKey(article._id, to);
  // The requester's own reply address: a reply to it proves they read that mailbox.
  const replyTo = await replyAddressFor(ctx, ticket, to);
  const draft = () => ({
    ...draftMail(ctx, ticket, article, { key, kind: 'ack', template: 'ack', to: [to], replyTo, fromName: ctx.config.helpdesk.name, automatic: true, inReplyTo: article.messageId }),
    messageId: messageIdFor(key, ctx.config.helpdesk.domain),
  });
  // Decided already when the ticket was opened with the acknowledgement as its thread tip.
  if (ticket.requesterTip === messageIdFor(key, ctx.config.helpdesk.domain)) return draft();
  // A re-run must not spend the sender's rate-limit budget on an acknowledgement already queued.
  if (!opts.articleIsNew && (await isQueued(ctx.store, key))) return draft();
  if (!(await mayAcknowledge(ctx, to))) {
    ctx.log.warn({ ticket: ticket.number, to }, 'acknowledgement rate limit reached, none sent');
    return null;
  }
  return draft();
}

const ackKey = (articleId: unknown, to: string) => `${String(articleId)}:ack:${to}`;

/** Spends one acknowledgement of the sender's hourly budget; false when it is spent. */
export function mayAcknowledge(ctx: DomainContext, to: string): Promise<boolean> {
  return withinRateLimit(ctx, `ack:${to}`, ctx.config.ackRateLimitPerHour, HOUR);
}

/** The Message-ID the acknowledgement of article `articleId` to `to` will have. */
export function ackMessageId(ctx: DomainContext, articleId: unknown, to: string): string {
  return messageIdFor(ackKey(articleId, to), ctx.config.helpdesk.domain);
}

export async function acknowledge(ctx: DomainContext, ticket: Ticket, article: Article, opts: { articleIsNew?: boolean } = {}): Promise<void> {
  const draft = await planAcknowledgement(ctx, ticket, article, opts);
  if (!draft) return;
  const [enq] = await sendMails(ctx, ticket, [draft]);
  await ctx.store.models.Ticket.updateOne({ _id: ticket._id }, { $set: { requesterTip: enq!.mail.messageId } });
}

/** The mails telling each member of the ticket's unit about a new ticket or a new message from the requester's side. */
export async function planUnitNotifications(ctx: DomainContext, ticket: Ticket, article: Article, event: 'new' | 'followup'): Promise<OutboundDraft[]> {
  const sender = article.from?.address;
  const fromName = `${article.from?.name || article.from?.address || 'Someone'} via ${ctx.config.helpdesk.name}`;
  const drafts: OutboundDraft[] = [];
  for (const member of membersOf(ctx, ticket.su, ticket.number)) {
    if (member === sender) continue;
    drafts.push(
      draftMail(ctx, ticket, article, {
        replyTo: await replyAddressFor(ctx, ticket, member),
        kind: event === 'new' ? 'notify-new' : 'notify-followup',
        template: event === 'new' ? 'notify-new' : 'notify-followup',
        to: [member],
        fromName,
        automatic: true,
        inReplyTo: article.messageId,
      }),
    );
  }
  return drafts;
}

/** Tells each member of the ticket's unit about a new ticket or a new message from the requester's side. */
export async function notifyUnit(ctx: DomainContext, ticket: Ticket, article: Article, event: 'new' | 'followup'): Promise<void> {
  await sendMails(ctx, ticket, await planUnitNotifications(ctx, ticket, article, event));
}

/**
 * One copy of a mail for each of the requester's side, each with that person's own reply
 * address (help+<ticket>-<token>@…, engine/reply-tokens.ts): a reply to it proves its author
 * reads that mailbox, and no one learns another's token. Every copy shows the same To and Cc
 * and goes only to its own person. The requester's copy (or the first) is the thread tip.
 */
async function sendPersonalCopies(ctx: DomainContext, ticket: Ticket, article: Article | null, spec: SendSpec & { keyFor: (address: string) => string }): Promise<void> {
  const everyone = [...spec.to, ...(spec.cc ?? [])];
  const drafts: OutboundDraft[] = [];
  for (const person of everyone) {
    drafts.push({ ...draftMail(ctx, ticket, article, { ...spec, key: spec.keyFor(person), replyTo: await replyAddressFor(ctx, ticket, person) }), envelopeTo: [person] });
  }
  const queued = await sendMails(ctx, ticket, drafts);
  const tip = queued[Math.max(0, everyone.indexOf(ticket.requester.address))];
  if (tip) await ctx.store.models.Ticket.updateOne({ _id: ticket._id }, { $set: { requesterTip: tip.mail.messageId } });
}

/** An agent's answer, mailed to the requester and the participants (everyone but the agent). */
export async function relayAgentReply(ctx: DomainContext, ticket: Ticket, article: Article): Promise<void> {
  const sender = article.from?.address;
  const to = ticket.requester.address === sender ? [] : [ticket.requester.address];
  const cc = ticket.participants.filter((p) => p !== sender && !to.includes(p) && !ctx.units.isAgent(p));
  if (!to.length && !cc.length) return;
  await sendPersonalCopies(ctx, ticket, article, {
    kind: 'reply',
    keyFor: (person) => `${article._id}:reply:${person}`,
    template: 'reply',
    to: to.length ? to : cc,
    cc: to.length ? cc : [],
    fromName: `${article.from?.name || 'Agent'} via ${ctx.config.helpdesk.name}`,
    automatic: false,
    inReplyTo: ticket.requesterTip ?? ticket.rootMessageId,
  });
}

/** A unit's members; a unit no longer in the configuration falls back to the entry unit, loudly. */
function membersOf(ctx: DomainContext, unit: string, ticketNumber: number): string[] {
  if (ctx.units.get(unit)) return ctx.units.members(unit);
  ctx.log.warn({ ticket: ticketNumber, unit }, 'unit not in the configuration: its mail goes to the entry unit');
  return ctx.units.members(ctx.units.entryKey);
}

export interface UnitMail {
  /** Idempotency key of the event (an event or article id): one mail per member per key. */
  key: string;
  kind: string;
  headline: string;
  lines?: string[];
  article?: Article | null;
  /** Default: the ticket's current unit. */
  unit?: string;
  /** Addresses not to tell (the actor). */
  exclude?: (string | null | undefined)[];
}

/** A mail to every member of a unit, each with their own reply address. */
export async function tellUnit(ctx: DomainContext, ticket: Ticket, mail: UnitMail): Promise<void> {
  const exclude = new Set(mail.exclude?.filter(Boolean).map((a) => a!.toLowerCase()));
  const drafts: OutboundDraft[] = [];
  for (const member of membersOf(ctx, mail.unit ?? ticket.su, ticket.number)) {
    if (exclude.has(member)) continue;
    drafts.push(draftMail(ctx, ticket, mail.article ?? null, {
      key: `${mail.key}:${mail.kind}:${member}`,
      kind: mail.kind,
      template: 'unit-event',
      to: [member],
      replyTo: await replyAddressFor(ctx, ticket, member),
      fromName: ctx.config.helpdesk.name,
      automatic: true,
      inReplyTo: ticket.rootMessageId,
      extra: { headline: mail.headline, lines: mail.lines ?? [] },
    }));
  }
  await sendMails(ctx, ticket, drafts);
}

export interface RequesterMail {
  key: string;
  kind: string;
  /** The body: an agent's words, or null for a notice of the helpdesk. */
  text: string | null;
  lines?: string[];
  /** An agent's name when an agent wrote the text. */
  fromName?: string;
  article?: Article | null;
  verifyUrl?: string | null;
}

/** A mail to the requester (and the participants), threaded under the last mail they saw. */
export async function tellRequester(ctx: DomainContext, ticket: Ticket, mail: RequesterMail): Promise<void> {
  const to = ticket.requester.address ? [ticket.requester.address] : [];
  const cc = ticket.participants.filter((p) => !to.includes(p) && !ctx.units.isAgent(p));
  if (!to.length && !cc.length) return;
  await sendPersonalCopies(ctx, ticket, mail.article ?? null, {
    keyFor: (person) => `${mail.key}:${mail.kind}:${person === ticket.requester.address ? 'requester' : person}`,
    kind: mail.kind,
    template: 'requester-event',
    to: to.length ? to : cc,
    cc: to.length ? cc : [],
    fromName: mail.fromName ? `${mail.fromName} via ${ctx.config.helpdesk.name}` : ctx.config.helpdesk.name,
    // A person's words are a reply; a notice of the helpdesk is automatic (RFC 3834).
    automatic: !mail.fromName,
    inReplyTo: ticket.requesterTip ?? ticket.rootMessageId,
    extra: { text: mail.text, lines: mail.lines ?? [], verifyUrl: mail.verifyUrl ?? null },
  });
}
