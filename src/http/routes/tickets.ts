import Router from '@koa/router';
import { withinRateLimit } from '../../domain/rate-limit.ts';
import { listOwnTickets } from '../../domain/ticket-list.ts';
import { roleOn } from '../../domain/portal/access.ts';
import { attachmentForViewer, FormError, PRIORITIES, openTicketFromWeb, replyFromWeb, setStateByRequester, TICKET_STATES, ticketForViewer } from '../../domain/portal/web-tickets.ts';
import { field, render, type Portal, type PortalContext, type PortalState } from '../context.ts';
import { newSubmission, ticketNumber, uploads } from './form-input.ts';
import { notFound, showTicket } from './ticket-view.ts';

const REQUESTER_DONE = { solve: 'The ticket is marked solved.', reopen: 'The ticket is reopened.', verify: 'Thank you: the solution is confirmed and the ticket is closed.' } as const;

/** My tickets, a new ticket, a ticket's page, replies, solve / reopen / verify, attachments. */
export function ticketRoutes(portal: Portal): Router<PortalState> {
  const router = new Router<PortalState>();
  const { domain, config } = portal;

  router.get('/', async (ctx) => {
    const viewer = ctx.state.viewer;
    if (!viewer) return render(portal, ctx, 'welcome', { cancelled: ctx.query.cancelled === '1' });
    const q = typeof ctx.query.q === 'string' ? ctx.query.q.slice(0, 200) : '';
    const state = typeof ctx.query.state === 'string' && (TICKET_STATES as readonly string[]).includes(ctx.query.state) ? ctx.query.state : '';
    const page = Number(ctx.query.page) || 1;
    const list = await listOwnTickets(domain, viewer.user, { q, state, page });
    render(portal, ctx, 'home', { nav: 'home', list, q, state, states: TICKET_STATES, units: Object.fromEntries(domain.units.all().map((u) => [u.key, u.name])) });
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

  router.get('/tickets/:number', (ctx) => showTicket(portal, ctx, ticketNumber(ctx)));

  router.post('/tickets/:number/reply', async (ctx) => {
    const number = ticketNumber(ctx);
    if (!number) return notFound(portal, ctx);
    const files = await uploads(ctx, 'attachments');
    try {
      const ticket = await replyFromWeb(domain, ctx.state.viewer!, number, { submission: field(ctx, 'submission'), text: field(ctx, 'text'), attachments: files });
      if (!ticket) return notFound(portal, ctx);
      ctx.state.session.data.flash = 'Your reply was added and mailed.';
      ctx.redirect(`/tickets/${number}`);
    } catch (err) {
      if (!(err instanceof FormError)) throw err;
      await showTicket(portal, ctx, number, { errors: err.errors, reply: field(ctx, 'text'), submission: field(ctx, 'submission'), status: 422 });
    }
  });

  /** The requester's buttons: mark solved, reopen, confirm the solution. */
  const requesterSets = async (ctx: PortalContext, number: number, action: 'solve' | 'reopen' | 'verify'): Promise<void> => {
    try {
      const ticket = await setStateByRequester(domain, ctx.state.viewer!, number, action, field(ctx, 'submission'));
      if (!ticket) return notFound(portal, ctx);
      ctx.state.session.data.flash = REQUESTER_DONE[action];
    } catch (err) {
      if (!(err instanceof FormError)) throw err;
      ctx.state.session.data.flash = Object.values(err.errors)[0] ?? 'Not allowed.';
    }
    ctx.redirect(`/tickets/${number}`);
  };

  router.post('/tickets/:number/state', async (ctx) => {
    const number = ticketNumber(ctx);
    const action = field(ctx, 'action');
    if (!number || (action !== 'solve' && action !== 'reopen' && action !== 'verify')) return notFound(portal, ctx);
    await requesterSets(ctx, number, action);
  });

  // The link in the solution mail: a page that asks before anything changes (a mail scanner
  // following links must not verify a solution).
  router.get('/tickets/:number/verify', async (ctx) => {
    const number = ticketNumber(ctx);
    const ticket = number ? await ticketForViewer(domain, ctx.state.viewer!, number) : null;
    if (!ticket) return notFound(portal, ctx);
    render(portal, ctx, 'verify', { ticket, requester: roleOn(domain, ctx.state.viewer!, ticket) === 'requester', submission: newSubmission() });
  });

  router.post('/tickets/:number/verify', async (ctx) => {
    const number = ticketNumber(ctx);
    if (!number) return notFound(portal, ctx);
    await requesterSets(ctx, number, 'verify');
  });

  router.get('/tickets/:number/articles/:article/attachments/:index', async (ctx) => {
    const number = ticketNumber(ctx);
    const index = /^\d{1,3}$/.test(ctx.params.index ?? '') ? Number(ctx.params.index) : -1;
    const found = number && index >= 0 ? await attachmentForViewer(domain, ctx.state.viewer!, number, String(ctx.params.article), index) : null;
    if (!found) return notFound(portal, ctx);
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
