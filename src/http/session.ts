import { randomBytes, timingSafeEqual } from 'node:crypto';
import type Koa from 'koa';
import type { DomainContext } from '../domain/context.ts';
import { destroySession, loadSession, newSessionId, saveSession, type SessionData } from '../domain/portal/sessions.ts';

export const SESSION_COOKIE = 'hg_session';
const TTL_MS = 12 * 3600_000;

export interface SessionState {
  data: SessionData;
  /** Starts a fresh session id (at sign-in: a session id known before sign-in is worthless after). */
  renew(): void;
  /** Ends the session (sign-out, cancel at consent). */
  destroy(): void;
  csrfToken(): string;
}

/**
 * Sessions in MongoDB behind an opaque cookie: HttpOnly, SameSite=Lax, Secure when the portal
 * is served over https. Saved only when changed.
 */
export function sessions(domain: DomainContext, secure: boolean): Koa.Middleware {
  return async (ctx, next) => {
    let id = ctx.cookies.get(SESSION_COOKIE) ?? null;
    const loaded = id ? await loadSession(domain, id) : null;
    if (!loaded) id = null;
    const data: SessionData = loaded ?? {};
    const before = JSON.stringify(data);
    let renew = false;
    let destroyed = false;
    const state: SessionState = {
      data,
      renew: () => {
        renew = true;
      },
      destroy: () => {
        destroyed = true;
      },
      csrfToken: () => (data.csrf ??= randomBytes(24).toString('base64url')),
    };
    ctx.state.session = state;
    await next();
    const cookie = { httpOnly: true, sameSite: 'lax' as const, secure, overwrite: true, path: '/' };
    if (destroyed) {
      if (id) await destroySession(domain, id);
      ctx.cookies.set(SESSION_COOKIE, '', { ...cookie, maxAge: 0 });
      return;
    }
    if (renew && id) {
      await destroySession(domain, id);
      id = null;
    }
    if (!id && JSON.stringify(data) === '{}') return;
    if (!id || renew || JSON.stringify(data) !== before) {
      id ??= newSessionId();
      await saveSession(domain, id, data, TTL_MS);
      ctx.cookies.set(SESSION_COOKIE, id, { ...cookie, maxAge: TTL_MS });
    }
  };
}

/** Every state-changing request must carry the session's CSRF token (a hidden form field). */
export function csrfProtection(): Koa.Middleware {
  return async (ctx, next) => {
    if (['GET', 'HEAD', 'OPTIONS'].includes(ctx.method)) return next();
    const session = ctx.state.session as SessionState;
    const expected = session.data.csrf;
    const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
    const given = typeof body._csrf === 'string' ? body._csrf : (ctx.get('x-csrf-token') ?? '');
    const a = Buffer.from(expected ?? '');
    const b = Buffer.from(given);
    if (!expected || !given || a.length !== b.length || !timingSafeEqual(a, b)) {
      ctx.status = 403;
      ctx.state.errorPage = { title: 'This form has expired', message: 'The form was not sent from this session (or the session ended). Go back, reload the page and try again.' };
      return;
    }
    return next();
  };
}
