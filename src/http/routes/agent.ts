import Router from '@koa/router';
import { actFromWeb, type AgentAction } from '../../domain/portal/agent-actions.ts';
import { unitQueue, type QueueFilters } from '../../domain/portal/agent-desk.ts';
import { FormError, PRIORITIES, replyFromWeb, TICKET_STATES } from '../../domain/portal/web-tickets.ts';
import { asAttachments, holdFiles, releaseHeld } from '../forms/held-files.ts';
import { agentForm, check, COMPOSER_MODES, queueQuery, type AgentForm } from '../forms/schemas.ts';
import { formatTime } from '../presenters/format.ts';
import { doneMessage, refusalMessage } from '../presenters/outcome.ts';
import { render, type Portal, type PortalState } from '../context.ts';
import { formFields, formFiles, ticketNumber } from './form-input.ts';
import { notFound, showTicket, unitNames, type TicketForms } from './ticket-view.ts';

/** A queue's address with its filters (defaults left out), as links and the way back show it. */
export function queueUrl(unit: string, filters: QueueFilters): string {
  const query = new URLSearchParams(Object.entries(filters).filter(([k, v]) => v && !(k === 'state' && v === 'active') && !(k === 'scope' && v === 'now'))).toString();
  return `/queue/${unit}${query ? `?${query}` : ''}`;
}

function toAction(form: AgentForm): AgentAction {
  if (form.action === 'assign') return { kind: 'assign', su: form.su };
  if (form.action === 'priority') return { kind: 'priority', priority: form.priority };
  return { kind: form.action };
}

/** Which of the ticket page's forms an /act request came from. */
function sentFrom(action: string | undefined): NonNullable<TicketForms['sent']> {
  if (action === 'assign' || action === 'priority') return action;
  return (COMPOSER_MODES as readonly string[]).includes(action ?? '') ? 'composer' : 'state';
}

/** The agents' side of the portal: the queues of their units and the actions on a ticket. */
export function agentRoutes(portal: Portal): Router<PortalState> {
  const router = new Router<PortalState>();
  const { domain } = portal;
  const unit = unitNames(portal);

  router.get('/queue', (ctx) => {
    const units = ctx.state.viewer!.units;
    if (!units.length) return render(portal, ctx, 'error', { title: 'No queue', message: 'You are not a member of any Support Unit.' }, 404);
    const first = units.includes(domain.units.entryKey) ? domain.units.entryKey : units[0]!;
    // The filters go along (a link or a sign-in that ended here keeps them).
    ctx.redirect(`/queue/${first}${ctx.querystring ? `?${ctx.querystring}` : ''}`);
  });

  router.get('/queue/:unit', async (ctx) => {
    const filters = queueQuery.parse(ctx.query);
    const queue = await unitQueue(domain, ctx.state.viewer!, String(ctx.params.unit), filters);
    if (!queue) return render(portal, ctx, 'error', { title: 'Queue not found', message: 'There is no Support Unit with this key that you are a member of.' }, 404);
    ctx.state.session.data.queue = queueUrl(queue.unit.key, filters);
    render(portal, ctx, 'queue', { nav: 'queue', queue, states: TICKET_STATES, priorities: PRIORITIES, time: formatTime, me: ctx.state.viewer!.addresses, link: (over: Partial<QueueFilters>) => queueUrl(queue.unit.key, { ...filters, ...over }) });
  });

  router.post('/tickets/:number/act', async (ctx) => {
    const number = ticketNumber(ctx);
    if (!number) return notFound(portal, ctx);
    const session = ctx.state.session;
    const fields = formFields(ctx);
    const sent = sentFrom(fields.action);
    const { form, uploaded, held } = await formFiles(ctx, fields.submission ?? '');
    // Not accepted: the page again, with what was typed and (for the composer) the files kept.
    const reject = async (errors: Record<string, string>, status: number, keepFiles = sent === 'composer') =>
      showTicket(portal, ctx, number, { sent, errors, values: fields, held: keepFiles ? await holdFiles(domain, session, form, held, uploaded) : [], submission: form, status });
    const checked = check(agentForm(domain.units.all().map((u) => u.key)), { ...fields, files: uploaded.length + held.length });
    if (!checked.ok) return reject(checked.errors, 422);
    const f = checked.value;
    const viewer = ctx.state.viewer!;
    const done = (message: string, to: string) => {
      releaseHeld(session, form);
      session.data.flash = message;
      ctx.redirect(to);
    };
    try {
      if (f.action === 'reply') {
        // A public reply is the same command as the requester's reply form, from the agent's side.
        const ticket = await replyFromWeb(domain, viewer, number, { submission: f.submission, text: f.text, attachments: uploaded, held: asAttachments(held) });
        if (!ticket) return notFound(portal, ctx);
        return done('Your reply was added and mailed.', `/tickets/${number}`);
      }
      const text = f.action === 'assign' ? f.comment : 'text' in f ? f.text : '';
      const action = toAction(f);
      const result = await actFromWeb(domain, viewer, number, { action, text, submission: f.submission, version: f.version, attachments: uploaded, held: asAttachments(held) });
      if (!result) return notFound(portal, ctx);
      if (result.ok) {
        // Handed to a unit this agent is not in: back to the queue they came from, filters and all.
        return done(`${doneMessage(action, unit, !!text)}${result.stillActs ? '' : ` ${portal.config.ticketPrefix}#${number} has left your queue.`}`, result.stillActs ? `/tickets/${number}` : (session.data.queue ?? '/queue'));
      }
      // Refused (someone changed the ticket meanwhile, or the action does not apply): say why, keep what was typed.
      if (result.textKept) releaseHeld(session, form);
      await reject({ form: refusalMessage(result, unit) }, 409, !result.textKept && sent === 'composer');
    } catch (err) {
      if (!(err instanceof FormError)) throw err;
      await reject(err.errors, 422);
    }
  });

  return router;
}
