import { timingSafeEqual } from 'node:crypto';
import type Koa from 'koa';
import type { Readiness } from '../jobs/readiness.ts';
import { metrics, scrape } from '../log/metrics.ts';

export interface ProbeOptions {
  readiness: Readiness | null;
  /** Bearer token that opens /metrics on this listener; null: /metrics is not served here. */
  metricsToken: string | null;
  /** Serve /metrics without a token (the separate METRICS_PORT listener). */
  metricsOpen?: boolean;
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(/^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * /healthz (the process answers), /readyz (every readiness check passed; 503 with the failing
 * ones otherwise) and /metrics (Prometheus; only with its token, or on the metrics listener).
 * Answered before sessions: probes make no session and need no sign-in.
 */
export function probes(opts: ProbeOptions): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.path === '/healthz' && ctx.method === 'GET') {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { status: 'alive', uptimeSeconds: Math.round(process.uptime()) };
      return;
    }
    if (ctx.path === '/readyz' && ctx.method === 'GET' && opts.readiness) {
      const report = await opts.readiness.evaluate();
      ctx.set('Cache-Control', 'no-store');
      ctx.status = report.ready ? 200 : 503;
      ctx.body = report;
      return;
    }
    if (ctx.path === '/metrics') {
      // Not served here without a token: a plain 404, never a sign-in redirect.
      if (!opts.metricsOpen && !opts.metricsToken) {
        ctx.status = 404;
        ctx.body = 'not found\n';
        return;
      }
      if (!opts.metricsOpen && !tokenMatches(ctx.get('authorization'), opts.metricsToken!)) {
        ctx.status = 401;
        ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
        ctx.body = 'metrics need the bearer token (METRICS_TOKEN)\n';
        return;
      }
      const { contentType, body } = await scrape();
      ctx.set('Cache-Control', 'no-store');
      ctx.type = contentType;
      ctx.body = body;
      return;
    }
    return next();
  };
}

/** Times every portal request by its route pattern (not its URL: ticket numbers would explode the series). */
export function requestMetrics(): Koa.Middleware {
  return async (ctx, next) => {
    const end = metrics.httpDuration.startTimer();
    try {
      await next();
    } finally {
      const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? (ctx.path.startsWith('/static/') ? '/static/*' : ['/healthz', '/readyz', '/metrics'].includes(ctx.path) ? ctx.path : 'other');
      end({ route: String(route), method: ctx.method, status: String(ctx.status) });
    }
  };
}
