import Router from '@koa/router';
import { mayOperate } from '../../domain/ops/access.ts';
import { recentOpsEvents, type OpsAction } from '../../domain/ops/audit.ts';
import { cancelFailed, listFailedMail, retryFailed } from '../../domain/ops/failed-mail.ts';
import { discardHeld, listHeldMail, releaseHeldAsTicket, type OpsResult } from '../../domain/ops/held-mail.ts';
import { listQuarantined, retryQuarantined } from '../../domain/ops/quarantine.ts';
import type { Viewer } from '../../domain/portal/access.ts';
import { formatSize, formatTime } from '../presenters/format.ts';
import { actionName, kindName, span } from '../presenters/ops.ts';
import { render, type Portal, type PortalContext, type PortalState } from '../context.ts';
import { pageNotFound } from './mail-view.ts';

type Page = 'held' | 'quarantine' | 'failed-mail';

const AUDITED: Record<Page, OpsAction[]> = {
  held: ['held.release', 'held.discard'],
  quarantine: ['inbox.retry'],
  'failed-mail': ['outbox.retry', 'outbox.cancel'],
};

/**
 * First Line's operations pages: held mail, quarantined inbox items, failed outbound mail, each
 * with its actions (POST forms with the CSRF token) and the latest audit entries. Anyone else
 * gets the page-not-found answer. A done action redirects to its page with a success message; a
 * refused one shows the page again with an error message saying why (409).
 */
export function opsRoutes(portal: Portal): Router<PortalState> {
  const router = new Router<PortalState>();
  const { domain } = portal;

  /** A page with its rows and latest audit entries; `refused`: why the action just tried was not done. */
  const show = async (ctx: PortalContext, page: Page, refused: string | null = null, status = 200) => {
    const viewer = ctx.state.viewer!;
    const rows = await (page === 'held' ? listHeldMail(domain, viewer) : page === 'quarantine' ? listQuarantined(domain, viewer) : listFailedMail(domain, viewer));
    if (!rows) return pageNotFound(ctx);
    const audit = await recentOpsEvents(domain, AUDITED[page]);
    const now = domain.now();
    render(
      portal,
      ctx,
      page,
      {
        nav: page,
        rows,
        audit,
        ...(refused ? { flash: { kind: 'error', text: refused } } : {}),
        holdDays: domain.config.holdDays,
        time: formatTime,
        age: (d: Date) => span(now.getTime() - new Date(d).getTime()),
        left: (d: Date) => span(new Date(d).getTime() - now.getTime()),
        actionName,
        kindName,
        bytes: formatSize,
      },
      status,
    );
  };

  router.get('/ops', (ctx) => (mayOperate(domain, ctx.state.viewer!) ? ctx.redirect('/ops/held') : pageNotFound(ctx)));
  router.get('/ops/held', (ctx) => show(ctx, 'held'));
  router.get('/ops/quarantine', (ctx) => show(ctx, 'quarantine'));
  router.get('/ops/failed-mail', (ctx) => show(ctx, 'failed-mail'));

  const action = (path: string, page: Page, act: (viewer: Viewer, id: string) => Promise<OpsResult | null>) => {
    router.post(path, async (ctx) => {
      const result = await act(ctx.state.viewer!, String(ctx.params.id));
      if (!result) return pageNotFound(ctx);
      if (!result.ok) return show(ctx, page, `Not done: ${result.reason}.`, 409);
      // Shown once by the layout on the page redirected to.
      ctx.state.session.data.flash = result.done;
      ctx.redirect(`/ops/${page}`);
    });
  };
  action('/ops/held/:id/release', 'held', (viewer, id) => releaseHeldAsTicket(domain, viewer, id));
  action('/ops/held/:id/discard', 'held', (viewer, id) => discardHeld(domain, viewer, id));
  action('/ops/quarantine/:id/retry', 'quarantine', (viewer, id) => retryQuarantined(domain, viewer, id));
  action('/ops/failed-mail/:id/retry', 'failed-mail', (viewer, id) => retryFailed(domain, viewer, id));
  action('/ops/failed-mail/:id/cancel', 'failed-mail', (viewer, id) => cancelFailed(domain, viewer, id));

  return router;
}
