import Router from '@koa/router';
import { capturedMessage, listCapturedMail } from '../../domain/ops/captured-mail.ts';
import { formatSize, formatTime } from '../presenters/format.ts';
import { kindName } from '../presenters/ops.ts';
import { sanitizeMailHtml } from '../render/sanitize-mail.ts';
import { render, type Portal, type PortalContext, type PortalState } from '../context.ts';

/**
 * The same answer as an address no page lives at (the app renders it): who may not read captured
 * mail, or the operations pages, learns nothing of them.
 */
export function pageNotFound(ctx: PortalContext): void {
  ctx.status = 404;
}

/**
 * Captured mail in the browser (no OUTBOUND_SMTP_URL), as Mailpit shows it: a list, and each
 * mail decoded (text, sanitised HTML, headers, attachments) with its links to follow.
 */
export function mailViewRoutes(portal: Portal): Router<PortalState> {
  const router = new Router<PortalState>();
  const { domain } = portal;

  router.get('/mail', async (ctx) => {
    const rows = await listCapturedMail(domain, ctx.state.viewer!);
    if (!rows) return pageNotFound(ctx);
    render(portal, ctx, 'mail', { nav: 'mail', rows, time: formatTime, kindName });
  });

  router.get('/mail/:id', async (ctx) => {
    const message = await capturedMessage(domain, ctx.state.viewer!, String(ctx.params.id));
    if (!message) return pageNotFound(ctx);
    const base = `/mail/${message.id}/attachments`;
    const cid = new Map(message.mail.attachments.map((a, i) => [a.contentId, `${base}/${i}`]));
    const html = message.mail.html ? sanitizeMailHtml(message.mail.html, { allowRemoteImages: false, cidUrl: (id) => cid.get(id) ?? null }).html : null;
    render(portal, ctx, 'mail-message', { nav: 'mail', message, html, attachmentsUrl: base, time: formatTime, kindName, bytes: formatSize });
  });

  router.get('/mail/:id/attachments/:index', async (ctx) => {
    const index = /^\d{1,3}$/.test(ctx.params.index ?? '') ? Number(ctx.params.index) : -1;
    const message = index >= 0 ? await capturedMessage(domain, ctx.state.viewer!, String(ctx.params.id)) : null;
    const file = message?.mail.attachments[index];
    if (!file) return pageNotFound(ctx);
    const original = file.filename ?? 'attachment';
    ctx.set('Content-Disposition', `attachment; filename="${original.replace(/[^\x20-\x7e]|["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(original)}`);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Content-Security-Policy', "default-src 'none'; sandbox");
    ctx.type = 'application/octet-stream';
    ctx.body = file.content;
  });

  return router;
}
