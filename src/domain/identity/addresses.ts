import { withinRateLimit } from '../rate-limit.ts';
import type { DomainContext } from '../context.ts';
import { bindAddress, requireAddress, userForAddress } from './bindings.ts';
import { releaseHeldMailOf } from './held.ts';
import { sendNotice } from './notices.ts';
import { findToken, hashToken, issueToken, spendToken } from './tokens.ts';

export { bindAddress, unbindAddress, userForAddress, type BindResult, type BindVia, type UnbindResult } from './bindings.ts';

const HOUR = 3600_000;
/** A confirmation link works for a day. */
const CONFIRMATION_VALID_MS = 24 * HOUR;
/** Confirmation mails one person may ask for per hour: enough for typos, too few to spam a stranger. */
const CONFIRMATIONS_PER_HOUR = 5;

export type ConfirmationRequest = { sent: boolean; reason?: 'already-yours' | 'taken' | 'rate-limited' };
export type ConfirmationResult = { ok: true; address: string } | { ok: false; reason: 'unknown' | 'used' | 'expired' | 'taken' | 'other-user' };

/**
 * Mails a confirmation link to `address`, which `sub` wants to bind: whoever can read that
 * mailbox can bind it. Throws InvalidInputError for something that is not a mail address.
 */
export async function requestAddressConfirmation(ctx: DomainContext, sub: string, address: string): Promise<ConfirmationRequest> {
  const a = requireAddress(address);
  if (ctx.own.has(a)) return { sent: false, reason: 'taken' };
  const owner = await userForAddress(ctx, a);
  if (owner) return { sent: false, reason: owner === sub ? 'already-yours' : 'taken' };
  if (!(await withinRateLimit(ctx, `confirm-address:${sub}`, CONFIRMATIONS_PER_HOUR, HOUR))) {
    ctx.log.warn({ sub }, 'address confirmation rate limit reached, none sent');
    return { sent: false, reason: 'rate-limited' };
  }
  const token = await issueToken(ctx, { purpose: 'confirm-address', address: a, sub, validMs: CONFIRMATION_VALID_MS });
  const { helpdesk, publicUrl } = ctx.config;
  await sendNotice(ctx, {
    // One mail per token; its hash names it without revealing it.
    key: `confirm-address:${hashToken(token)}`,
    kind: 'confirm-address',
    template: 'confirm-address',
    to: a,
    subject: `Confirm your address for the ${helpdesk.name}`,
    autoSubmitted: 'auto-generated',
    view: { address: a, link: `${publicUrl}/account/addresses/confirm?token=${token}`, validHours: CONFIRMATION_VALID_MS / HOUR },
  });
  ctx.log.info({ sub, address: a }, 'address confirmation sent');
  return { sent: true };
}

/**
 * The confirmation link, opened by `sub` (signed in): binds the address and releases any mail
 * held from it. Works once, for the person who asked, also against two requests at once.
 */
export async function confirmAddress(ctx: DomainContext, sub: string, token: string): Promise<ConfirmationResult> {
  const doc = await findToken(ctx, token, 'confirm-address');
  if (!doc) return { ok: false, reason: 'unknown' };
  // Someone else's link is not spent by opening it.
  if (doc.sub !== sub) return { ok: false, reason: 'other-user' };
  const spent = await spendToken(ctx, doc, sub);
  if (spent !== 'spent') return { ok: false, reason: spent };
  if ((await bindAddress(ctx, sub, doc.address, 'confirmation-link')) === 'taken') return { ok: false, reason: 'taken' };
  await releaseHeldMailOf(ctx, sub, doc.address);
  return { ok: true, address: doc.address };
}
