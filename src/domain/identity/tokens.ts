import { createHash, randomBytes } from 'node:crypto';
import { tryInsert } from '../../db/coordination/index.ts';
import type { DomainContext } from '../context.ts';

export type TokenPurpose = 'confirm-address' | 'sign-in-link';

/** A token as stored in `mailtokens` (db/models/identity.ts): only its hash is kept. */
export interface MailToken {
  _id: string;
  purpose: TokenPurpose;
  address: string;
  sub: string | null;
  expiresAt: Date;
  usedAt: Date | null;
  usedBy: string | null;
}

/** 32 random bytes in base64url: 43 characters. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Creates a single-use token for a link in a mail. The token itself is returned (for the
 * link) and never stored: a copy of the database does not let anyone use the links.
 */
export async function issueToken(ctx: DomainContext, spec: { purpose: TokenPurpose; address: string; sub?: string | null; validMs: number }): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  await ctx.store.models.MailToken.create({
    _id: hashToken(token),
    purpose: spec.purpose,
    address: spec.address,
    sub: spec.sub ?? null,
    expiresAt: new Date(ctx.now().getTime() + spec.validMs),
  });
  return token;
}

/** The stored token for `token` and `purpose`, or null for anything else (malformed, unknown, other purpose). */
export async function findToken(ctx: DomainContext, token: unknown, purpose: TokenPurpose): Promise<MailToken | null> {
  if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return null;
  const doc = await ctx.store.models.MailToken.findById(hashToken(token)).lean<MailToken>();
  return doc && doc.purpose === purpose ? doc : null;
}

/**
 * Uses a token once: of two concurrent requests exactly one spends it (the use is a marker
 * document "<hash>:used" stored once). usedAt on the token is then set for display only.
 */
export async function spendToken(ctx: DomainContext, doc: MailToken, by: string): Promise<'spent' | 'used' | 'expired'> {
  const { MailToken } = ctx.store.models;
  const now = ctx.now();
  if (doc.usedAt) return 'used';
  if (new Date(doc.expiresAt).getTime() <= now.getTime()) return 'expired';
  const spent = await tryInsert(MailToken, {
    _id: `${doc._id}:used`,
    purpose: doc.purpose,
    address: doc.address,
    sub: by,
    expiresAt: doc.expiresAt,
    usedAt: now,
    usedBy: by,
  });
  if (!spent) return 'used';
  await MailToken.updateOne({ _id: doc._id }, { $set: { usedAt: now, usedBy: by } });
  return 'spent';
}

/** A token in a link of a mail we wrote: `?token=…` or `&token=…` (also `&amp;token=…` in HTML). */
const LINK_TOKEN = /([?&;]token=)[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g;

/**
 * A sent mail's stored text and HTML with the tokens of its links replaced by "[redacted]": once
 * the relay has the mail, the database keeps no usable link (the tokens themselves only as hashes).
 */
export function redactLinkTokens(mail: { text: string; html: string | null }): { text: string; html: string | null } {
  return { text: mail.text.replace(LINK_TOKEN, '$1[redacted]'), html: mail.html?.replace(LINK_TOKEN, '$1[redacted]') ?? null };
}
