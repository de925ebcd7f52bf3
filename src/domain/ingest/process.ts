import { inboxRaw } from '../../db/inbox-batch.ts';
import type { Article } from '../../db/models/article.ts';
import type { InboxItem } from '../../db/models/inbox.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import type { MailAddress, ParsedMessage } from '../../mail/parse/parse.ts';
import { readMail } from '../../mail/parse/read.ts';
import type { DomainContext } from '../context.ts';
import { userForAddress } from '../identity/bindings.ts';
import { holdMail } from '../identity/hold.ts';
import { ackMessageId, mayAcknowledge, notifyUnit, planAcknowledgement, planUnitNotifications, sendMails } from '../notify.ts';
import { idFor } from '../../db/coordination/index.ts';
import { repliesToOurMail, resolveThread, senderRole, type SenderRole } from '../threading.ts';
import { recordInTicketList } from '../ticket-list.ts';
import { addArticle, createTicket, findArticleByKey, findTicketByNumber, registerMessageIds } from '../tickets.ts';
import type { Actor } from '../../db/models/engine.ts';
import { pastReopenWindow, requesterReplied, verifyByRequester } from '../engine/actions.ts';
import { planAgentMail, runAgentMail, type AgentMailPlan } from '../engine/agent-mail.ts';
import { replyTokensIn } from '../engine/reply-tokens.ts';
import { currentTicket } from '../engine/transition.ts';
import { handleBounce } from './bounces.ts';
import { assessSender, FLAG_UNVERIFIED_FOLLOW_UP, FLAG_UNVERIFIED_OPENING, senderTrusted, senderVerified } from './sender-trust.ts';
import type { SenderAuth } from '../../db/models/article.ts';

export type IngestOutcome =
  | { kind: 'ticket'; ticketNumber: number; articleId: string; created: boolean; note: string | null }
  | { kind: 'ignored'; note: string }
  /** From an address bound to nobody (UNBOUND_SENDERS=hold): kept under `address` until its sender signs in. */
  | { kind: 'held'; address: string; note: string };

/** Idempotency key of a mail: its Message-ID, or for mail without one the hash of its bytes. */
export function messageKey(mail: ParsedMessage, rawSha256: string): string {
  return mail.messageId ? `mid:${mail.messageId}` : `sha:${rawSha256}`;
}

export const DUPLICATE_MESSAGE_ID = 'duplicate Message-ID';

/**
 * The article already filed under this mail's key, and the key to file it under. A mail that
 * reuses a filed Message-ID with other content (contentHash: another sender, other words, other
 * files; trace headers do not count) is another mail: it gets a key of its own and a note. A
 * redelivery (the same bytes, or the same content by another path) finds the filed article.
 */
async function filedUnderKey(ctx: DomainContext, mail: ParsedMessage, item: InboxItem): Promise<{ key: string; known: Article | null; note: string | null }> {
  const key = messageKey(mail, item.rawSha256);
  const known = await findArticleByKey(ctx, key);
  // Articles filed before content hashes were kept count as the same mail, as they did then.
  if (!known || !known.contentHash || known.rawSha256 === item.rawSha256 || known.contentHash === mail.contentHash) return { key, known, note: null };
  const own = `${key}#${mail.contentHash}`;
  return { key: own, known: await findArticleByKey(ctx, own), note: DUPLICATE_MESSAGE_ID };
}

/**
 * Turns one stored message into a ticket or a follow-up, and queues the mails it causes.
 * Every step is idempotent (unique keys on ticket origin, article and outbound mail), so
 * running it again after a crash at any point completes the work without duplicates.
 */
export async function ingestMessage(ctx: DomainContext, item: InboxItem): Promise<IngestOutcome> {
  const { store, config } = ctx;
  const raw = await inboxRaw(store, item);
  if (!raw) throw new Error(`raw message ${item.rawSha256} is missing`);
  // The mail is read once: everything below decides on this reading.
  const reading = await readMail(raw, {
    ticketPrefix: config.ticketPrefix,
    ownAddress: config.helpdesk.address,
    envelope: item.envelope,
    verify: {
      resolver: ctx.dns,
      mta: config.helpdesk.domain,
      trustedAuthservIds: config.senderAuth.trustedAuthservIds,
      // A dead DNS server delays a mail by about three look-ups' time (15 s by default, inside the 30 s ingest lease).
      budgetMs: config.senderAuth.dnsTimeoutMs * 3,
    },
  });
  const { message: mail, sender, automated } = reading;
  const { key, known, note: duplicate } = await filedUnderKey(ctx, mail, item);

  // A bounce of our own mail is recorded on that mail and its ticket: never a ticket, never answered.
  const bounce = await handleBounce(ctx, item, mail, reading.report);
  if (bounce) return { kind: 'ignored', note: bounce.note };

  // One of our own mails came back (a list, a forward rule, a misconfigured alias).
  if (mail.messageId && (await store.models.ThreadId.findById(mail.messageId, { ours: 1 }).lean<{ ours: boolean }>())?.ours) {
    return { kind: 'ignored', note: `our own message ${mail.messageId} came back: not ticketed` };
  }

  let ticket: Ticket;
  let role: SenderRole;
  let article: Article;
  let newTicket: boolean;
  let articleIsNew = false;
  let ticketIsNew = false;
  let plan: AgentMailPlan | null = null;
  if (known) {
    // Redelivery, or a re-run after a crash: finish whatever was not finished.
    ticket = (await currentTicket(ctx, known.ticketId))!;
    article = known;
    role = known.authorRole === 'system' ? 'stranger' : (known.authorRole as SenderRole);
    newTicket = ticket.originKey === key;
  } else {
    const recipients = recipientsOf(mail, item);
    const found = (await resolveThread(ctx, mail, reading.tags)) ?? (await matchByReplyAddress(ctx, recipients));
    // The ticket with every transition in it (its document may lag behind its audit log).
    const match = found ? { ticket: (await currentTicket(ctx, found.ticket._id)) ?? found.ticket } : null;
    // A mail that names no sender at all is nobody's follow-up: it opens a ticket of its own.
    role = !match ? 'requester' : sender ? senderRole(ctx, match.ticket, sender.address) : 'stranger';
    // A requester's reply after the reopen window (or to a closed ticket) opens a new ticket
    // that names the old one; an automatic reply (out of office) never does, and neither does
    // a "verified" to a solution that is still solved.
    const verifies = match?.ticket.state === 'solved' && isVerifiedReply(reading.newText);
    const tooLate = !!match && role !== 'agent' && role !== 'stranger' && !automated && !verifies && pastReopenWindow(ctx, match.ticket);
    const opensTicket = !match || role === 'stranger' || tooLate;
    // Whom the mail may count as (DMARC, a trusted hop, the sender's own reply address).
    const auth = await assessSender(ctx, { verdict: reading.verdict, verifyError: reading.verifyError, item, sender: sender?.address ?? null, recipients, ticket: match?.ticket ?? null });
    const trusted = auth.status !== 'unverified';
    const identity = await identifySender(ctx, { item, mail, sender, automated, opensTicket });
    if ('kind' in identity) return identity;
    const authorSub = identity.sub;
    let text = mail.text;
    let flag: string | null = null;
    if (match && !opensTicket) {
      ticket = match.ticket;
      newTicket = false;
      // A follow-up keeps only its new text; the whole mail stays in the inbox.
      text = reading.newText;
      if (role === 'agent' && sender) plan = await planAgentMail(ctx, ticket, sender.address, recipients, reading, { automated });
      if (plan) text = plan.text;
      else if (!trusted) flag = FLAG_UNVERIFIED_FOLLOW_UP;
    } else {
      const referred = match && !tooLate ? match.ticket.number : null;
      // Whether the requester gets an acknowledgement is decided now, so that the ticket is
      // written once, with the acknowledgement as the requester's thread tip.
      const acked = !automated && !!sender?.address && !(referred && (await repliesToOurMail(ctx, mail))) && (await mayAcknowledge(ctx, sender.address));
      ({ ticket, created: ticketIsNew } = await createTicket(ctx, {
        originKey: key,
        subject: reading.subject,
        ownerSub: authorSub,
        requester: sender ?? { address: '', name: '' },
        // An unverified sender brings nobody in: its To and Cc stay on its article only.
        participants: trusted ? participantsOf(ctx, mail, sender?.address) : [],
        verifiedParticipants: auth.status === 'verified' ? participantsOf(ctx, mail, sender?.address) : [],
        su: ctx.units.entryKey,
        referredTicket: referred,
        previousTicket: tooLate ? match!.ticket.number : null,
        rootMessageId: mail.messageId,
        requesterTip: acked ? ackMessageId(ctx, idFor('article', key), sender!.address) : mail.messageId,
      }));
      role = 'requester';
      newTicket = true;
      if (tooLate) text = reading.newText;
      if (!trusted) flag = FLAG_UNVERIFIED_OPENING;
    }
    // The attachments in one write.
    await store.blobs.putMany(mail.attachments.map((a) => a.content));
    ({ article, created: articleIsNew } = await addArticle(ctx, ticket, {
      key,
      direction: 'in',
      authorRole: role as Exclude<SenderRole, 'stranger'>,
      authorSub,
      channel: 'mail',
      from: sender,
      to: mail.to,
      cc: mail.cc,
      subject: mail.subject,
      date: mail.date ? new Date(mail.date) : null,
      messageId: mail.messageId,
      inReplyTo: mail.inReplyTo,
      references: mail.references,
      text,
      // An agent's mail with commands keeps its HTML out: the commands and the quote are in it.
      // An agent's HTML quotes our notification (internal notes, commands): only its text is kept.
      html: role === 'agent' ? null : mail.html,
      attachments: mail.attachments.map(({ content: _c, ...meta }) => meta),
      authResults: mail.authResults,
      senderAuth: auth,
      automated,
      internal: plan?.internal ?? false,
      flag: plan?.flag ?? flag,
      inboxId: item._id,
      rawSha256: item.rawSha256,
      contentHash: mail.contentHash,
      note: duplicate,
    }, { touch: false }));
  }

  // Only people the ticket trusts bring others in: not an unverified "agent" (a spoofed From),
  // nor a requester or participant whose mail nothing vouches for (sender-trust.ts).
  const trusted = senderTrusted(article);
  const vouched = (role === 'requester' || role === 'participant') ? trusted : role === 'agent' && (!plan || !plan.flag) && !article.flag;
  const voucher = { vouched, verified: vouched && senderVerified(article) };
  const searchText = article.internal ? '' : `${article.subject} ${article.text}`;

  if (newTicket && !automated) {
    // The acknowledgement and the unit's notifications of a new ticket are queued together, and
    // the ticket written once after them (the thread tip is the acknowledgement).
    // A stranger's reply to one of our mails of another ticket goes to First Line quietly: an
    // acknowledgement would answer a bystander (perhaps the owner of an address a forger used,
    // who got our mail) and feed loops with auto-responders that do not say they are ones.
    const quiet = !!ticket.referredTicket && (await repliesToOurMail(ctx, mail));
    const ack = ticket.requester.address && !quiet ? await planAcknowledgement(ctx, ticket, article, { articleIsNew }) : null;
    const drafts = [...(ack ? [ack] : []), ...(await planUnitNotifications(ctx, ticket, article, 'new'))];
    const queued = await sendMails(ctx, ticket, drafts, [mail.messageId]);
    const tip = ack ? queued[0]!.mail.messageId : null;
    ticket = await updateTicketAfterMail(ctx, ticket, mail, role, sender?.address, voucher, { tip, touch: articleIsNew && !ticketIsNew, listed: articleIsNew, searchText });
    return ticketOutcome(ticket, article, newTicket, automated);
  }
  await registerMessageIds(ctx, ticket, [mail.messageId]);
  ticket = await updateTicketAfterMail(ctx, ticket, mail, role, sender?.address, voucher, { tip: null, touch: articleIsNew && !ticketIsNew, listed: articleIsNew, searchText });

  if (automated) {
    ctx.log.info({ ticket: ticket.number, reason: automated }, 'automated mail: no automatic answer');
  } else if (role === 'agent') {
    // A re-run after a crash plans again from the mail, unless the first run refused it.
    // A re-run (a crash, or the same mail delivered twice) replays what the first run decided:
    // its commands are not checked again against the ticket they already changed.
    if (!plan || !articleIsNew) {
      plan = await planAgentMail(ctx, ticket, sender?.address ?? '', recipientsOf(mail, item), reading, { automated, replay: !article.flag });
      if (article.flag) plan = { ...plan, flag: article.flag };
    }
    const actor: Actor = { address: sender?.address ?? null, name: sender?.name ?? '', sub: article.authorSub, role: 'agent' };
    await runAgentMail(ctx, ticket, article, plan, actor);
  } else if (trusted) {
    await requesterFollowUp(ctx, ticket, article, role);
  } else {
    // Kept and shown to the unit, flagged; it moves nothing (no reopen, no verify, no "in progress").
    await notifyUnit(ctx, ticket, article, 'followup');
  }
  return ticketOutcome(ticket, article, newTicket, automated);
}

function ticketOutcome(ticket: Ticket, article: Article, newTicket: boolean, automated: string | null): IngestOutcome {
  const notes = [
    automated ? `no automatic answer: ${automated}` : ticket.referredTicket && newTicket ? `named ticket ${ticket.referredTicket}, sender not a participant` : null,
    unverifiedNote(article.senderAuth),
  ].filter(Boolean);
  return { kind: 'ticket', ticketNumber: ticket.number, articleId: String(article._id), created: newTicket, note: notes.length ? notes.join('; ') : null };
}

function unverifiedNote(auth: SenderAuth | null | undefined): string | null {
  return auth?.status === 'unverified' ? `unverified sender: ${auth.reason}` : null;
}

/**
 * The sender's identity when their address is bound: owner of what they open, author of what
 * they write. With UNBOUND_SENDERS=hold, mail that would open a ticket for an address bound to
 * nobody is held instead (agents always pass; a requester or participant continues their ticket).
 */
async function identifySender(
  ctx: DomainContext,
  input: { item: InboxItem; mail: ParsedMessage; sender: MailAddress | null; automated: string | null; opensTicket: boolean },
): Promise<{ sub: string | null } | IngestOutcome> {
  const { sender } = input;
  const sub = sender?.address ? await userForAddress(ctx, sender.address) : null;
  // Held mail an agent released (ops page) opens its ticket like mail from a known sender's.
  if (sub || !input.opensTicket || ctx.config.unboundSenders !== 'hold' || input.item.releasedBy) return { sub };
  if (!sender?.address) return { kind: 'ignored', note: 'no sender address: mail from unbound senders is held, and this one names nobody' };
  if (ctx.units.isAgent(sender.address)) return { sub: null };
  const hold = await holdMail(ctx, { item: input.item, mail: input.mail, sender, automated: input.automated });
  return hold.kind === 'held' ? hold : { sub: hold.sub };
}

/** To/Cc addresses that are people: not ours, not the sender, not agents. */
function participantsOf(ctx: DomainContext, mail: ParsedMessage, sender: string | undefined): string[] {
  const out = new Set<string>();
  for (const a of [...mail.to, ...mail.cc]) {
    if (a.address && a.address !== sender && !ctx.own.has(a.address) && !ctx.units.isAgent(a.address)) out.add(a.address);
  }
  return [...out];
}

/**
 * The ticket's one write for a mail: participants, the requester's thread tip (`tip`: our
 * acknowledgement, else their own mail), updatedAt when the mail added an article to a ticket
 * that existed before (`touch`), and the owner's list entry (`listed`: with the mail's text).
 */
async function updateTicketAfterMail(
  ctx: DomainContext,
  ticket: Ticket,
  mail: ParsedMessage,
  role: SenderRole,
  sender: string | undefined,
  voucher: { vouched: boolean; verified: boolean },
  opts: { tip: string | null; touch: boolean; listed: boolean; searchText: string },
): Promise<Ticket> {
  const { Ticket } = ctx.store.models;
  const named = voucher.vouched ? participantsOf(ctx, mail, sender).filter((p) => p !== ticket.requester.address) : [];
  const participants = named.filter((p) => !ticket.participants.includes(p));
  // Participants named by a proven sender: the ones the portal lets in (portal/access.ts).
  const verifiedParticipants = voucher.verified ? named.filter((p) => !(ticket.verifiedParticipants ?? []).includes(p)) : [];
  const set: Record<string, unknown> = {};
  // The requester's thread tip moves with their own mail only, not with mail claiming to be theirs.
  const tip = opts.tip ?? (role === 'requester' && voucher.vouched ? mail.messageId : null);
  if (tip && ticket.requesterTip !== tip) set.requesterTip = tip;
  if (opts.touch) set.updatedAt = ctx.now();
  const update: Record<string, unknown> = {};
  const add: Record<string, unknown> = {};
  if (participants.length) add.participants = { $each: participants };
  if (verifiedParticipants.length) add.verifiedParticipants = { $each: verifiedParticipants };
  if (Object.keys(add).length) update.$addToSet = add;
  if (Object.keys(set).length) update.$set = set;
  if (!Object.keys(update).length) {
    if (opts.listed) await recordInTicketList(ctx, ticket, opts.searchText);
    return ticket;
  }
  const fresh = (await Ticket.findOneAndUpdate({ _id: ticket._id }, update, { returnDocument: 'after' }).lean<Ticket>())!;
  await recordInTicketList(ctx, fresh, opts.listed ? opts.searchText : '');
  return fresh;
}

/** Where the mail was addressed: the envelope's recipients and the To/Cc headers. */
function recipientsOf(mail: ParsedMessage, item: InboxItem): string[] {
  return [...new Set([...item.envelope.rcptTo, ...mail.to.map((a) => a.address), ...mail.cc.map((a) => a.address)].filter(Boolean).map((a) => a.toLowerCase()))];
}

/** A mail with neither tag nor known References, sent to an agent's reply address of a ticket. */
async function matchByReplyAddress(ctx: DomainContext, recipients: string[]): Promise<{ ticket: Ticket } | null> {
  for (const { number } of replyTokensIn(ctx, recipients)) {
    const ticket = await findTicketByNumber(ctx, number);
    if (ticket) return { ticket };
  }
  return null;
}

/** A reply that is only the word "verified" (any case, any punctuation around it). */
export function isVerifiedReply(text: string): boolean {
  return /^[\s"'“”«»(]*verified[\s"'“”«».!)]*$/i.test(text);
}

/** The requester's (or a participant's) mail on their ticket: the state it causes, and the unit told. */
async function requesterFollowUp(ctx: DomainContext, ticket: Ticket, article: Article, role: SenderRole): Promise<void> {
  const actor: Actor = { address: article.from?.address ?? null, name: article.from?.name ?? '', sub: article.authorSub, role: role === 'requester' ? 'requester' : 'participant' };
  const origin = { actor, channel: 'mail' as const, op: article.key };
  // (Also on a re-run after a crash between "verified" and "closed".)
  if (role === 'requester' && isVerifiedReply(article.text) && (ticket.state === 'solved' || ticket.recentOps.some((o) => o.op === article.key))) {
    await verifyByRequester(ctx, ticket, origin);
    return;
  }
  const moved = await requesterReplied(ctx, ticket, origin);
  await notifyUnit(ctx, moved?.ticket ?? ticket, article, 'followup');
}
