import Router from '@koa/router';
import { actFromWeb } from '../../domain/portal/agent-actions.ts';
import { queueFilters, unitQueue } from '../../domain/portal/agent-desk.ts';
import { formatTime } from '../../domain/portal/agent-view.ts';
import { FormError, PRIORITIES, TICKET_STATES } from '../../domain/portal/web-tickets.ts';
import { field, render, type Portal, type PortalState } from '../context.ts';
import { ticketNumber, uploads } from './form-input.ts';
import { notFound, showTicket } from './ticket-view.ts';

/** The agents' side of the portal: the queues of their units and the actions on a ticket. */
export function agentRoutes(portal: Portal): Router<PortalState> {
  const router = new Router<PortalState>();
  const { domain } = portal;

  router.get('/queue', (ctx) => {
    const units = ctx.state.viewer!.units;
    if (!units.length) return render(portal, ctx, 'error', { title: 'No queue', message: 'You are not a member of any Support Unit.' }, 404);
    const first = units.includes(domain.units.entryKey) ? domain.units.entryKey : units[0]!;
    ctx.redirect(`/queue/${first}`);
  });

  router.get('/queue/:unit', async (ctx) => {
    const queue = await unitQueue(domain, ctx.state.viewer!, String(ctx.params.unit), queueFilters(ctx.query));
    if (!queue) return render(portal, ctx, 'error', { title: 'Queue not found', message: 'There is no Support Unit with this key that you are a member of.' }, 404);
    render(portal, ctx, 'queue', { nav: 'queue', queue, states: TICKET_STATES, priorities: PRIORITIES, time: formatTime, me: ctx.state.viewer!.addresses });
  });

  router.post('/tickets/:number/act', async (ctx) => {
    const number = ticketNumber(ctx);
    if (!number) return notFound(portal, ctx);
    const input = {
      action: field(ctx, 'action'),
      submission: field(ctx, 'submission'),
      version: field(ctx, 'version'),
      text: field(ctx, 'text'),
      su: field(ctx, 'su'),
      priority: field(ctx, 'priority'),
      attachments: await uploads(ctx, 'attachments'),
    };
    const values = { text: input.text, su: input.su, priority: input.priority };
    try {
      const result = await actFromWeb(domain, ctx.state.viewer!, number, input);
      if (!result) return notFound(portal, ctx);
      if (result.ok) {
        ctx.state.session.data.flash = result.done;
        return ctx.redirect(`/tickets/${number}`);
      }
      // Refused (someone changed the ticket meanwhile, or the action does not apply): say why, keep what was typed.
      await showTicket(portal, ctx, number, { act: { action: input.action, errors: { form: `Not done: ${result.reason}.` }, values }, status: 409 });
    } catch (err) {
      if (!(err instanceof FormError)) throw err;
      await showTicket(portal, ctx, number, { act: { action: input.action, errors: err.errors, values }, submission: input.submission, status: 422 });
    }
  });

  return router;
}
