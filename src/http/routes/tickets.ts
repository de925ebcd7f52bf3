import Router from '@koa/router';
import { withinRateLimit } from '../../domain/rate-limit.ts';
import { listOwnTickets } from '../../domain/ticket-list.ts';
import { roleOn } from '../../domain/portal/access.ts';
import { attachmentForViewer, FormError, PRIORITIES, openTicketFromWeb, replyFromWeb, setStateByRequester, TICKET_STATES, ticketForViewer } from '../../domain/portal/web-tickets.ts';
import { asAttachments, holdFiles, releaseHeld, type HeldFile } from '../forms/held-files.ts';
import { check, newTicketForm, replyForm, ticketListQuery } from '../forms/schemas.ts';
import { errorSummary } from '../presenters/error-summary.ts';
import { formatSize } from '../presenters/format.ts';
import { render, type Portal, type PortalContext, type PortalState } from '../context.ts';
import { formFields, formFiles, newSubmission, ticketNumber } from './form-input.ts';
import { notFound, showTicket } from './ticket-view.ts';

const REQUESTER_DONE = { solve: 'The ticket is marked solved.', reopen: 'The ticket is reopened.', verify: 'Thank you: the solution is confirmed and the ticket is closed.' } as const;

/** The new-ticket form's fields in their order: where its error summary links to. */
const NEW_TICKET_FIELDS = { subject: 'subject', category: 'category', description: 'description', priority: 'priority', files: 'attachments' };

/** My tickets, a new ticket, a ticket's page, replies, solve / reopen / verify, attachments. */
export function ticketRoutes(portal: Portal): Router<PortalState> {
  const router = new Router<PortalState>();
  const { domain, config } = portal;

  const myTickets = async (ctx: PortalContext) => {
    const { q, state, page } = ticketListQuery.parse(ctx.query);
    const list = await listOwnTickets(domain, ctx.state.viewer!.user, { q, state, page });
    render(portal, ctx, 'home', { nav: 'home', list, q, state, states: TICKET_STATES, units: Object.fromEntries(domain.units.all().map((u) => [u.key, u.name])) });
  };

  router.get('/', async (ctx) => {
    const viewer = ctx.state.viewer;
    if (!viewer) return render(portal, ctx, 'welcome', { cancelled: ctx.query.cancelled === '1' });
    // Agents start at their queue; their own tickets are one link away (/tickets), and a
    // search of My tickets (a query on /) still shows them.
    if (viewer.units.length && !ctx.querystring) return ctx.redirect('/queue');
    await myTickets(ctx);
  });

  router.get('/tickets', myTickets);

  const showNewForm = (ctx: PortalContext, values: Record<string, string>, errors: Record<string, string>, held: HeldFile[] = [], status = 200) =>
    render(
      portal,
      ctx,
      'ticket-new',
      {
        values: { priority: 'less urgent', ...values },
        errors,
        summary: errorSummary(errors, NEW_TICKET_FIELDS),
        held: held.map((f) => ({ ...f, sizeText: formatSize(f.size) })),
        categories: config.categories,
        priorities: PRIORITIES,
        submission: values.submission || newSubmission(),
      },
      status,
    );

  router.get('/tickets/new', (ctx) => showNewForm(ctx, {}, {}));

  router.post('/tickets', async (ctx) => {
    const viewer = ctx.state.viewer!;
    const fields = formFields(ctx);
    const { form, uploaded, held } = await formFiles(ctx, fields.submission ?? '');
    const values = { subject: fields.subject ?? '', category: fields.category ?? '', description: fields.description ?? '', priority: fields.priority ?? '', submission: form };
    // Not accepted: what was typed and attached stays for the next try.
    const reject = async (errors: Record<string, string>, status: number) => showNewForm(ctx, values, errors, await holdFiles(domain, ctx.state.session, form, held, uploaded), status);
    const checked = check(newTicketForm(config.categories.map((c) => c.key)), fields);
    if (!checked.ok) return reject(checked.errors, 422);
    if (!(await withinRateLimit(domain, `web-ticket:${viewer.user._id}`, 20, 3600_000))) {
      return reject({ form: 'You opened many tickets in the last hour: please wait a little.' }, 429);
    }
    try {
      const ticket = await openTicketFromWeb(domain, viewer, { ...checked.value, attachments: uploaded, held: asAttachments(held) });
      releaseHeld(ctx.state.session, form);
      ctx.state.session.data.flash = `Your ticket ${config.ticketPrefix}#${ticket.number} was created. We mailed you an acknowledgement; the helpdesk will answer by mail and on this page.`;
      ctx.redirect(`/tickets/${ticket.number}`);
    } catch (err) {
      if (err instanceof FormError) return reject(err.errors, 422);
      throw err;
    }
  });

  router.get('/tickets/:number', (ctx) => showTicket(portal, ctx, ticketNumber(ctx)));

  router.post('/tickets/:number/reply', async (ctx) => {
    const number = ticketNumber(ctx);
    if (!number) return notFound(portal, ctx);
    const fields = formFields(ctx);
    const { form, uploaded, held } = await formFiles(ctx, fields.submission ?? '');
    const reject = async (errors: Record<string, string>) =>
      showTicket(portal, ctx, number, { sent: 'reply', errors, values: fields, held: await holdFiles(domain, ctx.state.session, form, held, uploaded), submission: form, status: 422 });
    const checked = check(replyForm, { ...fields, files: uploaded.length + held.length });
    if (!checked.ok) return reject(checked.errors);
    try {
      const ticket = await replyFromWeb(domain, ctx.state.viewer!, number, { submission: checked.value.submission, text: checked.value.text, attachments: uploaded, held: asAttachments(held) });
      if (!ticket) return notFound(portal, ctx);
      releaseHeld(ctx.state.session, form);
      ctx.state.session.data.flash = 'Your reply was added and mailed.';
      ctx.redirect(`/tickets/${number}`);
    } catch (err) {
      if (!(err instanceof FormError)) throw err;
      await reject(err.errors);
    }
  });

  /** The requester's buttons: mark solved, reopen, confirm the solution. */
  const requesterSets = async (ctx: PortalContext, number: number, action: 'solve' | 'reopen' | 'verify'): Promise<void> => {
    try {
      const ticket = await setStateByRequester(domain, ctx.state.viewer!, number, action, formFields(ctx).submission ?? '');
      if (!ticket) return notFound(portal, ctx);
      ctx.state.session.data.flash = REQUESTER_DONE[action];
      ctx.redirect(`/tickets/${number}`);
    } catch (err) {
      if (!(err instanceof FormError)) throw err;
      // Not done: said on the page itself, not as a success message.
      await showTicket(portal, ctx, number, { sent: 'state', errors: err.errors, status: 409 });
    }
  };

  router.post('/tickets/:number/state', async (ctx) => {
    const number = ticketNumber(ctx);
    const action = formFields(ctx).action;
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
