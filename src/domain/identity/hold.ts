import type { HeldSender } from '../../db/models/held.ts';
import type { InboxItem } from '../../db/models/inbox.ts';
import { appendSlot, insertOnce } from '../../db/coordination/index.ts';
import type { MailAddress, ParsedMessage } from '../../mail/parse/parse.ts';
import { isQueued } from '../../mail/send/outbox.ts';
import type { DomainContext } from '../context.ts';
import { withinRateLimit } from '../rate-limit.ts';
import { userForAddress } from './bindings.ts';
import { sendNotice } from './notices.ts';
import { issueToken } from './tokens.ts';

const DAY = 86_400_000;
/**
 * One sign-in link per sender per day: a burst of mails gets one answer, and someone who
 * writes again the next day (perhaps having lost the first link) gets a fresh one.
 */
export const HELD_ANSWER_WINDOW_MS = DAY;

export type HoldResult = { kind: 'held'; address: string; note: string } | { kind: 'bound'; sub: string };

export interface HoldInput {
  item: InboxItem;
  mail: ParsedMessage;
  sender: MailAddress;
  /** automationReason of the mail: such mail gets no answer. */
  automated: string | null;
}

/**
 * Holds a mail whose sender is bound to no identity (UNBOUND_SENDERS=hold): records it under
 * the sender's address and answers once with a sign-in link. Returns `bound` instead when the
 * address got bound while we were at it; the caller then tickets the mail as usual.
 *
 * Re-running it after a crash is harmless: a second entry for the same inbox item is read once
 * (readers drop duplicates), and the answer is keyed by the inbox item.
 */
export async function holdMail(ctx: DomainContext, input: HoldInput): Promise<HoldResult> {
  const { item, mail, automated } = input;
  const address = input.sender.address;
  const n = await recordHeldMail(ctx, address, item, mail, automated);

  // Recorded first, bound-check second; a release binds first and reads the records second.
  // So either we see the binding here, or the release sees our record: no mail is left behind.
  const sub = await userForAddress(ctx, address);
  if (sub) return { kind: 'bound', sub };

  const answer = await answerHeldSender(ctx, input);
  ctx.log.info({ inboxId: String(item._id), address, position: n, answer }, 'mail held: sender bound to no identity');
  return { kind: 'held', address, note: `held: ${address} is bound to no LS AAI identity; ${answer}` };
}

/** Appends the mail to the sender's held list (see db/models/held.ts); returns its position. */
async function recordHeldMail(ctx: DomainContext, address: string, item: InboxItem, mail: ParsedMessage, automated: string | null): Promise<number> {
  const { HeldSender, HeldMail } = ctx.store.models;
  const receivedAt = new Date(item.receivedAt);
  let sender = await HeldSender.findById(address).lean<HeldSender>();
  if (!sender) {
    sender = (await insertOnce<HeldSender>(HeldSender, { _id: address, firstHeldAt: receivedAt, lastHeldAt: receivedAt, slots: 0, settled: 0 })).doc;
  }
  const n = await appendSlot(HeldMail, address, sender.slots ?? 0, (n) => ({
    address,
    n,
    inboxId: item._id,
    receivedAt,
    subject: mail.subject,
    messageId: mail.messageId,
    automated,
  }));
  // A hint only (see the model): losing this update to a concurrent one costs a few reads.
  await HeldSender.updateOne({ _id: address }, { $max: { slots: n, lastHeldAt: receivedAt } });
  return n;
}

/** The one answer a held sender gets: a sign-in link that releases their mail. Says what it did. */
async function answerHeldSender(ctx: DomainContext, input: HoldInput): Promise<string> {
  const { item, mail, automated, sender } = input;
  const address = sender.address;
  if (automated) return `no answer: ${automated}`;
  if (ctx.own.has(address)) return 'no answer: the sender is one of our own addresses';
  const key = `held-answer:${item._id}`;
  // A re-run must not spend the sender's one answer of the day on an answer already queued.
  if (await isQueued(ctx.store, key)) return 'sign-in link sent';
  if (!(await withinRateLimit(ctx, `held:${address}`, 1, HELD_ANSWER_WINDOW_MS))) return 'no answer: a sign-in link went to this sender within the day';
  const { holdDays, publicUrl } = ctx.config;
  const token = await issueToken(ctx, { purpose: 'sign-in-link', address, validMs: holdDays * DAY });
  const subject = mail.subject || '(no subject)';
  await sendNotice(ctx, {
    key,
    kind: 'held',
    template: 'held',
    to: address,
    subject: `Sign in to open your ticket: ${subject}`,
    autoSubmitted: 'auto-replied',
    inReplyTo: mail.messageId,
    view: { name: sender.name, heldSubject: subject, link: `${publicUrl}/auth/claim?token=${token}`, holdDays },
  });
  await ctx.store.models.HeldSender.updateOne({ _id: address }, { $set: { lastNoticeAt: ctx.now() } });
  return 'sign-in link sent';
}
