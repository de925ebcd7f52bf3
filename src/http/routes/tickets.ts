import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import Router from '@koa/router';
import { withinRateLimit } from '../../domain/rate-limit.ts';
import { listOwnTickets } from '../../domain/ticket-list.ts';
import { attachmentForViewer, FormError, PRIORITIES, type Article, openTicketFromWeb, replyFromWeb, setStateByRequester, ticketPage, type Upload } from '../../domain/portal/web-tickets.ts';
import { sanitizeMailHtml } from '../render/sanitize-mail.ts';
import { field, render, type Portal, type PortalContext, type PortalState } from '../context.ts';

const newSubmission = () => randomBytes(18).toString('base64url');

/** Uploaded files of a multipart form (koa-body / formidable), read and removed from disk. */
async function uploads(ctx: PortalContext, name: string): Promise<Upload[]> {
  const files = (ctx.request as { files?: Record<string, unknown> }).files?.[name];
  const list = (Array.isArray(files) ? files : files ? [files] : []) as { filepath: string; originalFilename?: string | null; mimetype?: string | null; size: number }[];
  const out: Upload[] = [];
  for (const f of list) {
    if (f.size > 0 || f.originalFilename) {
      out.push({ filename: (f.originalFilename ?? 'attachment').replace(/[\r\n"\\/]/g, '_').slice(0, 200), contentType: f.mimetype ?? 'application/octet-stream', content: await readFile(f.filepath) });
    }
    await rm(f.filepath, { force: true });
  }
  return out.filter((u) => u.content.length > 0 || u.filename !== 'attachment');
}

function ticketNumber(ctx: PortalContext): number | null {
  const raw = String(ctx.params.number ?? '');
  return /^\d{1,9}$/.test(raw) ? Number(raw) : null;
}

/** My tickets, a new ticket, a ticket's page, replies, solve / reopen, attachments. */
export function ticketRoutes(portal: Portal): Router<PortalState> {
  const router = new Router<PortalState>();
  const { domain, config } = portal;
  const notFound = (ctx: PortalContext) => render(portal, ctx, 'error', { title: 'Ticket not found', message: 'There is no ticket with this number that you can see.' }, 404);

  router.get('/', async (ctx) => {
    const viewer = ctx.state.viewer;
    if (!viewer) return render(portal, ctx, 'welcome', { cancelled: ctx.query.cancelled === '1' });
    const q = typeof ctx.query.q === 'string' ? ctx.query.q.slice(0, 200) : '';
    const state = typeof ctx.query.state === 'string' && ['new', 'open', 'solved'].includes(ctx.query.state) ? ctx.query.state : '';
    const page = Number(ctx.query.page) || 1;
    const list = await listOwnTickets(domain, viewer.user, { q, state, page });
    render(portal, ctx, 'home', { list, q, state, units: Object.fromEntries(domain.units.all().map((u) => [u.key, u.name])) });
  });

  const showNewForm = (ctx: PortalContext, values: Record<string, string>, errors: Record<string, string>, status = 200) =>
    render(portal, ctx, 'ticket-new', { values: { priority: 'less urgent', ...values }, errors, categories: config.categories, priorities: PRIORITIES, submission: values.submission ?? newSubmission() }, status);

  router.get('/tickets/new', (ctx) => showNewForm(ctx, {}, {}));

  router.post('/tickets', async (ctx) => {
    const viewer = ctx.state.viewer!;
    const values = { subject: field(ctx, 'subject'), category: field(ctx, 'category'), description: field(ctx, 'description'), priority: field(ctx, 'priority'), submission: field(ctx, 'submission') };
    const files = await uploads(ctx, 'attachments');
    if (!(await withinRateLimit(domain, `web-ticket:${viewer.user._id}`, 20, 3600_000))) {
      return showNewForm(ctx, values, { form: 'You opened many tickets in the last hour: please wait a little.' }, 429);
    }
    try {
      const ticket = await openTicketFromWeb(domain, viewer, { ...values, attachments: files });
      ctx.redirect(`/tickets/${ticket.number}`);
    } catch (err) {
      if (err instanceof FormError) return showNewForm(ctx, values, err.errors, 422);
      throw err;
    }
  });

  router.get('/tickets/:number', async (ctx) => {
    const number = ticketNumber(ctx);
    const page = number ? await ticketPage(domain, ctx.state.viewer!, number) : null;
    if (!page) return notFound(ctx);
    const showImages = ctx.query.images === '1';
    let blocked = 0;
    const articles = page.articles.map((a: Article) => {
      let html: string | null = null;
      if (a.html) {
        const cid = new Map(a.attachments.map((att, i) => [att.contentId, `/tickets/${page.ticket.number}/articles/${a._id}/attachments/${i}`]));
        const clean = sanitizeMailHtml(a.html, { allowRemoteImages: showImages, cidUrl: (id) => cid.get(id) ?? null });
        blocked += clean.blockedRemoteImages;
        html = clean.html;
      }
      return { ...a, id: String(a._id), html };
    });
    if (showImages) {
      // Remote images were asked for on this page only.
      const csp = ctx.response.get('Content-Security-Policy');
      ctx.set('Content-Security-Policy', csp.replace("img-src 'self'", "img-src 'self' https: http:"));
    }
    render(portal, ctx, 'ticket', { ticket: page.ticket, articles, role: page.role, unit: domain.units.get(page.ticket.su)?.name ?? page.ticket.su, url: `${config.publicUrl}/tickets/${page.ticket.number}`, blocked, showImages, submission: newSubmission(), errors: {}, reply: '' });
  });

  router.post('/tickets/:number/reply', async (ctx) => {
    const number = ticketNumber(ctx);
    if (!number) return notFound(ctx);
    const files = await uploads(ctx, 'attachments');
    try {
      const ticket = await replyFromWeb(domain, ctx.state.viewer!, number, { submission: field(ctx, 'submission'), text: field(ctx, 'text'), attachments: files });
      if (!ticket) return notFound(ctx);
      ctx.state.session.data.flash = 'Your reply was added and mailed.';
      ctx.redirect(`/tickets/${number}`);
    } catch (err) {
      if (!(err instanceof FormError)) throw err;
      const page = await ticketPage(domain, ctx.state.viewer!, number);
      if (!page) return notFound(ctx);
      render(portal, ctx, 'ticket', { ticket: page.ticket, articles: page.articles.map((a) => ({ ...a, id: String(a._id), html: null })), role: page.role, unit: domain.units.get(page.ticket.su)?.name ?? page.ticket.su, url: `${config.publicUrl}/tickets/${number}`, blocked: 0, showImages: false, submission: field(ctx, 'submission') || newSubmission(), errors: err.errors, reply: field(ctx, 'text') }, 422);
    }
  });

  router.post('/tickets/:number/state', async (ctx) => {
    const number = ticketNumber(ctx);
    const action = field(ctx, 'action');
    if (!number || (action !== 'solve' && action !== 'reopen')) return notFound(ctx);
    try {
      const ticket = await setStateByRequester(domain, ctx.state.viewer!, number, action);
      if (!ticket) return notFound(ctx);
      ctx.state.session.data.flash = action === 'solve' ? 'The ticket is marked solved.' : 'The ticket is reopened.';
    } catch (err) {
      if (!(err instanceof FormError)) throw err;
      ctx.state.session.data.flash = Object.values(err.errors)[0] ?? 'Not allowed.';
    }
    ctx.redirect(`/tickets/${number}`);
  });

  router.get('/tickets/:number/articles/:article/attachments/:index', async (ctx) => {
    const number = ticketNumber(ctx);
    const index = /^\d{1,3}$/.test(ctx.params.index ?? '') ? Number(ctx.params.index) : -1;
    const found = number && index >= 0 ? await attachmentForViewer(domain, ctx.state.viewer!, number, String(ctx.params.article), index) : null;
    if (!found) return notFound(ctx);
    const original = (found.meta.filename ?? 'attachment').replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
    const name = original.replace(/[^\x20-\x7e]|["\\]/g, '_');
    ctx.set('Content-Disposition', `attachment; filename="${name}"; filename*=UTF-8''${encodeURIComponent(original)}`);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Content-Security-Policy', "default-src 'none'; sandbox");
    // A stored type that is not a plain media type (it came from a sender) is served as bytes.
    ctx.type = /^[\w.+-]+\/[\w.+-]+(\s*;\s*[\w.+-]+=("[^"\r\n]*"|[\w.+-]+))*$/.test(found.meta.contentType) ? found.meta.contentType : 'application/octet-stream';
    ctx.body = found.content;
  });

  return router;
}
