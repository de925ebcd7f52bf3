import Router from '@koa/router';
import { exportPersonalData } from '../../domain/privacy/export.ts';
import { cancelErasure, ErasureRefused, executeErasure, mayExecuteErasures, openErasureOf, pendingErasures, requestErasure } from '../../domain/privacy/requests.ts';
import { subjectOfUser } from '../../domain/privacy/subject.ts';
import { formatTime } from '../presenters/format.ts';
import { field, render, type Portal, type PortalContext, type PortalState } from '../context.ts';
import { newSubmission } from './form-input.ts';

/**
 * A person's own data (Account → Download my data, Request erasure) and First Line's list of
 * erasure requests to carry out.
 */
export function privacyRoutes(portal: Portal): Router<PortalState> {
  const router = new Router<PortalState>();
  const { domain } = portal;

  router.get('/account/data', async (ctx) => {
    const archive = await exportPersonalData(domain, await subjectOfUser(domain, ctx.state.viewer!.user._id));
    ctx.set('Content-Disposition', `attachment; filename="${archive.filename}"`);
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'application/zip';
    ctx.body = Buffer.from(archive.zip);
  });

  const confirmPage = (ctx: PortalContext, error: string | null, status = 200) =>
    render(
      portal,
      ctx,
      'erasure-confirm',
      { addresses: ctx.state.viewer!.addresses, graceDays: portal.config.erasureGraceDays, entryUnit: domain.units.entry.name, submission: field(ctx, 'submission') || newSubmission(), error },
      status,
    );

  router.get('/account/erase', async (ctx) => {
    if (await openErasureOf(domain, ctx.state.viewer!.user._id)) return ctx.redirect('/account');
    confirmPage(ctx, null);
  });

  router.post('/account/erase', async (ctx) => {
    if (field(ctx, 'understood') !== 'yes') return confirmPage(ctx, 'Tick the box to confirm that you understand your data cannot be recovered.', 422);
    const request = await requestErasure(domain, ctx.state.viewer!.user._id, field(ctx, 'submission'));
    ctx.state.session.data.flash = `Your request is recorded and we sent you a mail about it. Your data will be erased by ${new Date(request.dueAt).toISOString().slice(0, 10)} at the latest.`;
    ctx.redirect('/account');
  });

  router.post('/account/erase/cancel', async (ctx) => {
    const withdrawn = await cancelErasure(domain, ctx.state.viewer!.user._id);
    ctx.state.session.data.flash = withdrawn ? 'Your erasure request is withdrawn: nothing will be erased.' : 'There was no erasure request to withdraw.';
    ctx.redirect('/account');
  });

  /** First Line only; everyone else finds no page here. */
  const firstLine = (ctx: PortalContext) => {
    if (mayExecuteErasures(domain, ctx.state.viewer!)) return true;
    render(portal, ctx, 'error', { title: 'Page not found', message: 'There is no page at this address: the link may be incomplete or out of date.' }, 404);
    return false;
  };

  router.get('/erasures', async (ctx) => {
    if (!firstLine(ctx)) return;
    render(portal, ctx, 'erasures', { requests: await pendingErasures(domain), time: formatTime });
  });

  router.post('/erasures/:id/execute', async (ctx) => {
    if (!firstLine(ctx)) return;
    const user = ctx.state.viewer!.user;
    try {
      const done = await executeErasure(domain, String(ctx.params.id), { kind: 'agent', sub: user._id, name: user.name });
      const c = done.counts;
      ctx.state.session.data.flash = c
        ? `Erased: ${c.articles} message${c.articles === 1 ? '' : 's'} emptied on ${c.tickets} ticket${c.tickets === 1 ? '' : 's'}, ${c.attachments} attachment${c.attachments === 1 ? '' : 's'} and ${c.rawMails} received mail${c.rawMails === 1 ? '' : 's'} deleted, ${c.outbound} outbound mail${c.outbound === 1 ? '' : 's'} redacted.`
        : 'This request had been carried out already.';
    } catch (err) {
      if (!(err instanceof ErasureRefused)) throw err;
      return render(portal, ctx, 'erasures', { requests: await pendingErasures(domain), time: formatTime, flash: { kind: 'error', text: `Not executed: ${err.message}.` } }, 409);
    }
    ctx.redirect('/erasures');
  });

  return router;
}
