import { upsertById } from '../../db/coordination/index.ts';
import { createHash, randomBytes } from 'node:crypto';
import type { DomainContext } from '../context.ts';

/** What a portal session holds. Kept in MongoDB, so any helgate instance can serve any request. */
export interface SessionData {
  /** LS AAI subject once signed in. */
  sub?: string;
  /** Set once the current AUP version was accepted in this session's sign-in. */
  consented?: string;
  /** Anti-CSRF token of this session (compared with every form's hidden field). */
  csrf?: string;
  /** An authorization request in flight: PKCE verifier, state, nonce, and where to go after. */
  login?: { verifier: string; state: string; nonce: string; returnTo: string; claimToken?: string | null; startedAt: number };
  /** Claims received at the callback, kept until "YES, Continue" (Cancel keeps nothing). */
  pendingClaims?: Record<string, unknown>;
  /** Where to go once signed in. */
  returnTo?: string;
  /** A sign-in link's token (held mail), used once the sign-in is complete. */
  claimToken?: string | null;
  /** id token of the sign-in, for RP-initiated logout at the provider. */
  idToken?: string;
  /** Flash message shown once on the next page. */
  flash?: string;
  /** Files of a rejected form, stored as blobs and kept for its next submission (by the form's submission id). */
  heldFiles?: { form: string; id: string; filename: string; contentType: string; size: number; sha256: string; until: number }[];
  /** An agent's last queue with its filters: the way back from a ticket. */
  queue?: string;
}

const hashOf = (id: string) => createHash('sha256').update(id).digest('hex');

/** A new random session id (the cookie value); only its hash is stored. */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

export async function loadSession(ctx: DomainContext, id: string): Promise<SessionData | null> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
  const doc = await ctx.store.models.Session.findById(hashOf(id)).lean<{ data: SessionData; expiresAt: Date }>();
  if (!doc || doc.expiresAt <= ctx.now()) return null;
  return doc.data ?? {};
}

export async function saveSession(ctx: DomainContext, id: string, data: SessionData, ttlMs: number): Promise<void> {
  await upsertById(ctx.store.models.Session, hashOf(id), { data, expiresAt: new Date(ctx.now().getTime() + ttlMs) });
}

export async function destroySession(ctx: DomainContext, id: string): Promise<void> {
  await ctx.store.models.Session.deleteOne({ _id: hashOf(id) });
}

/** Removes expired sessions (a sweep: TTL indexes are not available on every engine). */
export async function sweepSessions(ctx: DomainContext): Promise<number> {
  const res = await ctx.store.models.Session.deleteMany({ expiresAt: { $lt: ctx.now() } });
  return res.deletedCount ?? 0;
}
