import path from 'node:path';
import { Eta } from 'eta';
import type { Context } from 'koa';
import { projectRoot } from '../config/load.ts';

export type PageName = 'chooser' | 'login' | 'consent' | 'logout' | 'logged-out' | 'error';

/**
 * The pages carry no script at all (they must work without JavaScript); the policy makes a
 * stray inline script fail loudly. No form-action: Chromium applies it to the redirect
 * after a form post, which goes to the relying party.
 */
const PAGE_HEADERS: Record<string, string> = {
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

/** Renders templates/dev-aai: autoescaped HTML sharing one layout. */
export class DevAaiPages {
  private readonly eta = new Eta({ views: path.join(projectRoot, 'templates/dev-aai'), autoEscape: true, cache: true });

  render(name: PageName, data: { title: string } & Record<string, unknown>): string {
    return this.eta.render(`./${name}`, data);
  }

  /** Answers with a page, on our Koa app or oidc-provider's; undefined status keeps the one set. */
  send(ctx: Context, status: number | undefined, name: PageName, data: { title: string } & Record<string, unknown>): void {
    if (status !== undefined) ctx.status = status;
    ctx.set(PAGE_HEADERS);
    ctx.type = 'html';
    ctx.body = this.render(name, data);
  }
}
