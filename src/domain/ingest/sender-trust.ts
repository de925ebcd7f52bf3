import type { Article, SenderAuth } from '../../db/models/article.ts';
import type { InboxItem } from '../../db/models/inbox.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import type { MailVerdict } from '../../mail/auth/verify.ts';
import type { DomainContext } from '../context.ts';
import { isValidReplyToken, replyTokensIn } from '../engine/reply-tokens.ts';

/**
 * Whom a received mail may count as. A mail counts as from address X only when
 *  - DMARC passes for X's domain (our own check with mailauth, or a trusted hop's
 *    Authentication-Results: TRUSTED_AUTHSERV_IDS), or
 *  - it came to X's own reply address of the ticket (help+<ticket>-<token>@…), which only
 *    X's mailbox received.
 * Otherwise it is unverified: kept and shown, but it adds no participants, changes no state
 * and grants nobody access. UNAUTHENTICATED_SENDERS=accept takes From: at its word when the
 * domain publishes no DMARC record (the open, Zammad-like helpdesk); a DMARC failure or a DNS
 * error stays unverified in both modes.
 */

/** On a follow-up from an unverified sender. */
export const FLAG_UNVERIFIED_FOLLOW_UP = 'unverified sender: kept, but it changed nothing on the ticket';
/** On the first mail of a ticket opened by an unverified sender. */
export const FLAG_UNVERIFIED_OPENING = 'unverified sender: nobody in its To or Cc was made a participant';

const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/** Decides whom a received mail counts as, from its verdict (mailauth against DNS, the trusted hop; mail/parse/read.ts). */
export async function assessSender(
  ctx: DomainContext,
  input: { verdict: MailVerdict; verifyError: string | null; item: InboxItem; sender: string | null; recipients: string[]; ticket: Pick<Ticket, '_id' | 'number'> | null },
): Promise<SenderAuth> {
  const { senderAuth } = ctx.config;
  const { verdict } = input;
  // A message mailauth cannot read at all is simply not authenticated (its verdict is empty).
  if (input.verifyError !== null) ctx.log.warn({ inbox: String(input.item._id), err: input.verifyError }, 'sender verification failed');
  const record = (status: SenderAuth['status'], via: SenderAuth['via'], reason: string): SenderAuth => ({
    status,
    address: input.sender,
    via,
    reason,
    spf: verdict.spf.result,
    spfDomain: verdict.spf.domain,
    dkim: verdict.dkim.result,
    dkimDomains: verdict.dkim.domains,
    dmarc: verdict.dmarc.result,
    dmarcPolicy: verdict.dmarc.policy,
    arc: verdict.arc.result,
    alignedDomain: verdict.alignedDomain,
    hop: verdict.hop?.authservId ?? null,
  });
  const sender = input.sender?.toLowerCase() ?? null;
  if (!sender) return record('unverified', null, 'the mail names no sender');
  if (input.ticket && (await cameToOwnReplyAddress(ctx, input.ticket, sender, input.recipients))) {
    return record('verified', 'token', `sent to ${sender}'s reply address of this ticket`);
  }
  const domain = domainOf(sender);
  if (verdict.alignedDomain === domain && verdict.headerFrom === sender) {
    const ours = verdict.dmarc.result === 'pass';
    return record('verified', ours ? 'dmarc' : 'hop', ours ? `DMARC pass for ${domain}` : `${verdict.hop!.authservId} reports DMARC pass for ${domain}`);
  }
  if (verdict.headerFrom !== sender) return record('unverified', null, verdict.headerFrom ? `the sender is not the From: address DMARC checks (${verdict.headerFrom})` : 'no single From: address for DMARC to check');
  const hop = verdict.hop;
  if (verdict.dmarc.result === 'fail' || (hop?.dmarc === 'fail' && hop.dmarcDomain === domain)) {
    return record('unverified', null, `DMARC fail for ${domain}${verdict.dmarc.policy ? ` (policy ${verdict.dmarc.policy})` : ''}`);
  }
  if (verdict.dmarc.result === 'temperror') return record('unverified', null, `DNS error while checking DMARC for ${domain}`);
  if (verdict.dmarc.result === 'none' && senderAuth.unauthenticated === 'accept') {
    return record('accepted', null, `${domain} publishes no DMARC record; accepted as UNAUTHENTICATED_SENDERS=accept`);
  }
  if (verdict.dmarc.result === 'none') return record('unverified', null, `${domain} publishes no DMARC record, and no trusted hop or reply address vouches for the sender`);
  return record('unverified', null, `DMARC ${verdict.dmarc.result} for ${domain}`);
}

/** Whether the mail came to the reply address made for this sender on this ticket. */
async function cameToOwnReplyAddress(ctx: DomainContext, ticket: Pick<Ticket, '_id' | 'number'>, sender: string, recipients: string[]): Promise<boolean> {
  for (const t of replyTokensIn(ctx, recipients)) {
    if (t.number === ticket.number && (await isValidReplyToken(ctx, ticket, sender, t.token))) return true;
  }
  return false;
}

/** Whether an article's mail may act as its sender. Mail stored before senders were checked, and web articles, may. */
export function senderTrusted(article: Pick<Article, 'senderAuth'>): boolean {
  return !article.senderAuth || article.senderAuth.status !== 'unverified';
}

/** Whether its sender was proven (not merely accepted in the open mode). */
export function senderVerified(article: Pick<Article, 'senderAuth'>): boolean {
  return article.senderAuth?.status === 'verified';
}
