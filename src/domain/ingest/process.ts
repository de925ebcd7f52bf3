import type { Article } from '../../db/models/article.ts';
import type { InboxItem } from '../../db/models/inbox.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import { automationReason } from '../../mail/parse/automated.ts';
import { parseMessage, type MailAddress, type ParsedMessage } from '../../mail/parse/parse.ts';
import { cleanSubject } from '../../mail/parse/subject.ts';
import type { DomainContext } from '../context.ts';
import { userForAddress } from '../identity/bindings.ts';
import { holdMail } from '../identity/hold.ts';
import { acknowledge, notifyUnit, relayAgentReply } from '../notify.ts';
import { resolveThread, senderRole, type SenderRole } from '../threading.ts';
import { recordInTicketList } from '../ticket-list.ts';
import { addArticle, createTicket, findArticleByKey, registerMessageIds } from '../tickets.ts';

export type IngestOutcome =
  | { kind: 'ticket'; ticketNumber: number; articleId: string; created: boolean; note: string | null }
  | { kind: 'ignored'; note: string }
  /** From an address bound to nobody (UNBOUND_SENDERS=hold): kept under `address` until its sender signs in. */
  | { kind: 'held'; address: string; note: string };

/** Idempotency key of a mail: its Message-ID, or for mail without one the hash of its bytes. */
export function messageKey(mail: ParsedMessage, rawSha256: string): string {
  return mail.messageId ? `mid:${mail.messageId}` : `sha:${rawSha256}`;
}

function senderOf(mail: ParsedMessage, item: InboxItem): MailAddress | null {
  if (mail.from) return mail.from;
  const env = item.envelope.mailFrom;
  return env ? { address: env.toLowerCase(), name: '' } : null;
}

/**
 * Turns one stored message into a ticket or a follow-up, and queues the mails it causes.
 * Every step is idempotent (unique keys on ticket origin, article and outbound mail), so
 * running it again after a crash at any point completes the work without duplicates.
 */
export async function ingestMessage(ctx: DomainContext, item: InboxItem): Promise<IngestOutcome> {
  const { store, config } = ctx;
  const raw = await store.blobs.get(item.rawSha256);
  if (!raw) throw new Error(`raw message ${item.rawSha256} is missing`);
  const mail = await parseMessage(raw);
  const key = messageKey(mail, item.rawSha256);

  // One of our own mails came back (a list, a forward rule, a misconfigured alias). Looked up
  // by _id alone: the only filter FerretDB 1.24 answers from an index.
  if (mail.messageId && (await store.models.ThreadId.findById(mail.messageId, { ours: 1 }).lean<{ ours: boolean }>())?.ours) {
    return { kind: 'ignored', note: `our own message ${mail.messageId} came back: not ticketed` };
  }

  const sender = senderOf(mail, item);
  const automated = automationReason({ headers: mail.headers, from: sender?.address ?? null, mailFrom: item.envelope.mailFrom, ownAddress: config.helpdesk.address });

  let ticket: Ticket;
  let role: SenderRole;
  let article: Article;
  let newTicket: boolean;
  let articleIsNew = false;
  const known = await findArticleByKey(ctx, key);
  if (known) {
    // Redelivery, or a re-run after a crash: finish whatever was not finished.
    ticket = (await store.models.Ticket.findById(known.ticketId).lean<Ticket>())!;
    article = known;
    role = known.authorRole === 'system' ? 'stranger' : (known.authorRole as SenderRole);
    newTicket = ticket.originKey === key;
  } else {
    const match = await resolveThread(ctx, mail);
    role = match && sender ? senderRole(ctx, match.ticket, sender.address) : 'requester';
    const opensTicket = !match || role === 'stranger';
    const identity = await identifySender(ctx, { item, mail, sender, automated, opensTicket });
    if ('kind' in identity) return identity;
    const authorSub = identity.sub;
    if (match && role !== 'stranger') {
      ticket = match.ticket;
      newTicket = false;
    } else {
      const referred = match ? match.ticket.number : null;
      ({ ticket } = await createTicket(ctx, {
        originKey: key,
        subject: cleanSubject(mail.subject, config.ticketPrefix),
        ownerSub: authorSub,
        requester: sender ?? { address: '', name: '' },
        participants: participantsOf(ctx, mail, sender?.address),
        su: ctx.units.entryKey,
        referredTicket: referred,
        rootMessageId: mail.messageId,
      }));
      role = 'requester';
      newTicket = true;
    }
    for (const a of mail.attachments) await store.blobs.put(a.content);
    ({ article, created: articleIsNew } = await addArticle(ctx, ticket, {
      key,
      direction: 'in',
      authorRole: role,
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
      text: mail.text,
      html: mail.html,
      attachments: mail.attachments.map(({ content: _c, ...meta }) => meta),
      authResults: mail.authResults,
      automated,
      inboxId: item._id,
      rawSha256: item.rawSha256,
    }));
  }

  await registerMessageIds(ctx, ticket, [mail.messageId]);
  ticket = await updateTicketAfterMail(ctx, ticket, mail, role, sender?.address);

  if (automated) {
    ctx.log.info({ ticket: ticket.number, reason: automated }, 'automated mail: no automatic answer');
  } else if (newTicket) {
    if (ticket.requester.address) await acknowledge(ctx, ticket, article, { articleIsNew });
    await notifyUnit(ctx, ticket, article, 'new');
  } else if (role === 'agent') {
    await relayAgentReply(ctx, ticket, article);
  } else {
    await notifyUnit(ctx, ticket, article, 'followup');
  }
  return {
    kind: 'ticket',
    ticketNumber: ticket.number,
    articleId: String(article._id),
    created: newTicket,
    note: automated ? `no automatic answer: ${automated}` : ticket.referredTicket && newTicket ? `named ticket ${ticket.referredTicket}, sender not a participant` : null,
  };
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
  if (sub || !input.opensTicket || ctx.config.unboundSenders !== 'hold') return { sub };
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

/** Single-document updates only: participants, state and the requester's thread tip. */
async function updateTicketAfterMail(ctx: DomainContext, ticket: Ticket, mail: ParsedMessage, role: SenderRole, sender: string | undefined): Promise<Ticket> {
  const { Ticket } = ctx.store.models;
  const participants = participantsOf(ctx, mail, sender).filter((p) => p !== ticket.requester.address);
  const set: Record<string, unknown> = {};
  if (role === 'agent' && ticket.state === 'new') set.state = 'open';
  if (role === 'requester' && mail.messageId && ticket.requesterTip !== mail.messageId) set.requesterTip = mail.messageId;
  const update: Record<string, unknown> = {};
  if (participants.length) update.$addToSet = { participants: { $each: participants } };
  if (Object.keys(set).length) update.$set = set;
  if (!Object.keys(update).length) return ticket;
  const fresh = (await Ticket.findOneAndUpdate({ _id: ticket._id }, update, { returnDocument: 'after' }).lean<Ticket>())!;
  await recordInTicketList(ctx, fresh);
  return fresh;
}
