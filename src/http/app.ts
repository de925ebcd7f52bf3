import { createServer, type Server } from 'node:http';
import os from 'node:os';
import Koa from 'koa';
import { koaBody } from 'koa-body';
import { rm } from 'node:fs/promises';
import type { Config } from '../config/load.ts';
import type { DomainContext } from '../domain/context.ts';
import { errorMessage } from '../errors/errors.ts';
import type { Logger } from '../log/logger.ts';
import { render, type Portal, type PortalContext, type PortalState } from './context.ts';
import { RelyingParty } from './oidc.ts';
import { accountRoutes } from './routes/account.ts';
import { agentRoutes } from './routes/agent.ts';
import { authRoutes, loadViewer } from './routes/auth.ts';
import { mailViewRoutes } from './routes/mail-view.ts';
import { opsRoutes } from './routes/ops.ts';
import { ticketRoutes } from './routes/tickets.ts';
import { probes, requestMetrics } from './probes.ts';
import type { Readiness } from '../jobs/readiness.ts';
import { securityHeaders } from './security.ts';
import { csrfProtection, sessions } from './session.ts';
import { StaticAssets } from './static-assets.ts';
import { PageRenderer } from './views.ts';

export interface PortalOptions {
  domain: DomainContext;
  config: Config;
  log: Logger;
  /** The OpenID Provider: the configured LS AAI, or the dev stand-in's issuer. */
  issuer: string;
  allowInsecureIssuer: boolean;
  templatesDir: string;
  webDir: string;
  /** Answers /readyz; null: readiness is not checked by this process. */
  readiness?: Readiness | null;
}

/** Paths open without a complete sign-in. */
const OPEN = [/^\/$/, /^\/auth\//, /^\/consent$/];

/** The Koa portal: security headers, sessions, CSRF, sign-in, pages. Routes call domain commands only. */
export function createPortalApp(opts: PortalOptions): Koa<PortalState> {
  const { config, log } = opts;
  const secure = config.publicUrl.startsWith('https:');
  const rp = new RelyingParty({
    issuer: opts.issuer,
    clientId: config.oidc.clientId,
    clientSecret: config.oidc.clientSecret,
    redirectUri: `${config.publicUrl}/auth/callback`,
    postLogoutRedirectUri: `${config.publicUrl}/`,
    allowInsecure: opts.allowInsecureIssuer,
  });
  const assets = new StaticAssets(opts.webDir);
  const portal: Portal = { domain: opts.domain, config, log, rp, pages: new PageRenderer(opts.templatesDir, assets) };
  const routers = [authRoutes(portal), ticketRoutes(portal), agentRoutes(portal), accountRoutes(portal), mailViewRoutes(portal), opsRoutes(portal)];
  /** Whether some page lives at this path (by any method): everything else is a 404, for anyone. */
  const known = (p: string) => routers.some((r) => r.match(p, 'GET').path.length > 0);
  const app = new Koa<PortalState>();
  app.proxy = secure;
  // Behind one TLS proxy: its X-Forwarded-For entry, not one a client made up.
  app.maxIpsCount = 1;
  app.silent = true;

  app.use(requestMetrics());
  app.use(securityHeaders(rp.issuerOrigin, secure));
  // Errors end on a page that says what happened, never a stack trace.
  app.use(async (ctx, next) => {
    try {
      await next();
      if (ctx.state.errorPage) render(portal, ctx as PortalContext, 'error', ctx.state.errorPage, ctx.status);
      else if (ctx.status === 404 && !ctx.body) render(portal, ctx as PortalContext, 'error', { title: 'Page not found', message: 'There is no page at this address: the link may be incomplete or out of date.' }, 404);
    } catch (err) {
      const status = (err as { status?: number }).status ?? 500;
      const expose = status < 500;
      log[expose ? 'warn' : 'error']({ err: errorMessage(err), path: ctx.path }, 'portal request failed');
      if (!ctx.state.session) {
        ctx.status = status;
        ctx.body = expose ? (err as Error).message : 'Something went wrong on our side.';
        return;
      }
      render(
        portal,
        ctx as PortalContext,
        'error',
        expose ? { title: 'Request not accepted', message: (err as Error).message } : { title: 'Something went wrong', message: 'The helpdesk could not complete this request. Nothing you sent was lost; please try again in a moment.' },
        status,
      );
    }
  });
  app.use(assets.middleware());
  app.use(probes({ readiness: opts.readiness ?? null, metricsToken: config.metrics.token }));
  app.use(sessions(opts.domain, secure));
  app.use(loadViewer(portal));
  app.use(async (ctx, next) => {
    // An address no page lives at answers 404 to everyone: sending a visitor to sign in first
    // would spend a sign-in (and its rate limit) on a page that does not exist.
    if (!known(ctx.path)) {
      ctx.status = 404;
      return;
    }
    if (ctx.state.viewer || OPEN.some((re) => re.test(ctx.path))) return next();
    if (ctx.state.session.data.pendingClaims) return ctx.redirect('/consent');
    if (ctx.method === 'GET') return ctx.redirect(`/auth/login?return=${encodeURIComponent(ctx.originalUrl)}`);
    ctx.status = 403;
    ctx.state.errorPage = { title: 'Sign in first', message: 'This needs you to be signed in.' };
  });
  app.use(
    koaBody({
      multipart: true,
      urlencoded: true,
      json: false,
      text: false,
      formLimit: '1mb',
      formidable: { maxFileSize: config.maxMessageSize, maxTotalFileSize: config.maxMessageSize, maxFiles: 20, uploadDir: os.tmpdir(), keepExtensions: false },
      onError: (err, ctx) => ctx.throw(413, `The upload is too large or malformed: ${err.message}`),
    }),
  );
  // Uploaded files are read by the routes that take them; whatever a request left behind goes.
  app.use(async (ctx, next) => {
    try {
      await next();
    } finally {
      const files = (ctx.request as { files?: Record<string, unknown> }).files ?? {};
      for (const f of Object.values(files).flat() as { filepath?: string }[]) if (f?.filepath) await rm(f.filepath, { force: true });
    }
  });
  app.use(csrfProtection());
  for (const router of routers) app.use(router.routes()).use(router.allowedMethods());
  return app;
}

export interface RunningPortal {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function listenPortal(app: Koa<PortalState>, host: string, port: number): Promise<RunningPortal> {
  const server: Server = createServer(app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as { port: number }).port;
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
