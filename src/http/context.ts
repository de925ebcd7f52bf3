import type Koa from 'koa';
import type { Config } from '../config/load.ts';
import type { DomainContext } from '../domain/context.ts';
import type { Viewer } from '../domain/portal/access.ts';
import type { Logger } from '../log/logger.ts';
import { opsNavOf } from './ops-nav.ts';
import type { RelyingParty } from './oidc.ts';
import type { SessionState } from './session.ts';
import type { PageRenderer } from './views.ts';

/** What the portal's routes share. */
export interface Portal {
  domain: DomainContext;
  config: Config;
  log: Logger;
  rp: RelyingParty;
  pages: PageRenderer;
}

export interface PortalState {
  session: SessionState;
  viewer?: Viewer;
  errorPage?: { title: string; message: string };
}

export type PortalContext = Koa.ParameterizedContext<PortalState>;

/** Renders a page inside the layout, with what every page needs (CSRF token, viewer, helpdesk name). */
export function render(portal: Portal, ctx: PortalContext, name: string, data: Record<string, unknown> = {}, status = 200): void {
  const flash = ctx.state.session.data.flash;
  if (flash) delete ctx.state.session.data.flash;
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.body = portal.pages.render(name, {
    helpdesk: portal.config.helpdesk,
    publicUrl: portal.config.publicUrl,
    prefix: portal.config.ticketPrefix,
    csrf: ctx.state.session.csrfToken(),
    viewer: ctx.state.viewer ?? null,
    initials: initialsOf(ctx.state.viewer?.user.name ?? ''),
    flash: flash ?? null,
    // The side bar's links to the Mail and operations pages (layout.eta).
    opsNav: opsNavOf(portal.domain, portal.config, ctx.state.viewer),
    ...data,
  });
}

function initialsOf(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  return ((parts[0]?.[0] ?? '?') + (parts.length > 1 ? (parts.at(-1)?.[0] ?? '') : '')).toUpperCase();
}

/** Form fields as strings (koa-body gives strings or arrays). */
export function field(ctx: PortalContext, name: string): string {
  const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
  const v = body[name];
  return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : '';
}

export function clientIp(ctx: PortalContext): string {
  return ctx.ip || ctx.request.socket.remoteAddress || '';
}
