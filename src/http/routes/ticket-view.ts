import { ticketPage, PRIORITIES } from '../../domain/portal/web-tickets.ts';
import { formatTime } from '../presenters/format.ts';
import { agentPanel, articleView, formsView, type TicketForms } from '../presenters/ticket-page.ts';
import { sanitizeMailHtml } from '../render/sanitize-mail.ts';
import { render, type Portal, type PortalContext } from '../context.ts';
import { newSubmission } from './form-input.ts';

export type { TicketForms };

export function notFound(portal: Portal, ctx: PortalContext): void {
  render(portal, ctx, 'error', { title: 'Ticket not found', message: 'There is no ticket with this number that you can see.' }, 404);
}

/** Unit keys to names for the presenters. */
export const unitNames = (portal: Portal) => (key: string) => portal.domain.units.get(key)?.name ?? key;

/**
 * Renders a ticket's page for the viewer: the conversation (HTML mail sanitised, remote images
 * only on request), and for an agent the composer, the actions, SLA clock, timers and audit log.
 * `forms`: a form that was not accepted, shown again with its errors, text and kept files.
 */
export async function showTicket(portal: Portal, ctx: PortalContext, number: number | null, forms: TicketForms = {}): Promise<void> {
  const { domain, config } = portal;
  const page = number ? await ticketPage(domain, ctx.state.viewer!, number) : null;
  if (!page) return notFound(portal, ctx);
  const showImages = ctx.query.images === '1' && !forms.status;
  let blocked = 0;
  const articles = page.articles.map((a) => {
    let html: string | null = null;
    if (a.html) {
      const cid = new Map(a.attachments.map((att, i) => [att.contentId, `/tickets/${page.ticket.number}/articles/${a._id}/attachments/${i}`]));
      const clean = sanitizeMailHtml(a.html, { allowRemoteImages: showImages, cidUrl: (id) => cid.get(id) ?? null });
      blocked += clean.blockedRemoteImages;
      html = clean.html;
    }
    return articleView(a, html, page.articleActions[String(a._id)], page.senders?.marks[String(a._id)] ?? null);
  });
  if (showImages) {
    // Remote images were asked for on this page only.
    const csp = ctx.response.get('Content-Security-Policy');
    ctx.set('Content-Security-Policy', csp.replace("img-src 'self'", "img-src 'self' https: http:"));
  }
  const unit = unitNames(portal);
  render(
    portal,
    ctx,
    'ticket',
    {
      ticket: page.ticket,
      articles,
      role: page.role,
      agent: page.agent ? agentPanel(page.agent, page.ticket.su, unit, domain.units.entry.name, forms) : null,
      requesterActions: page.requester,
      unverifiedMail: page.senders?.unverified ?? 0,
      unit: unit(page.ticket.su),
      url: `${config.publicUrl}/tickets/${page.ticket.number}`,
      // The agent's way back to the queue they came from, with its filters.
      back: page.role === 'agent' ? (ctx.state.session.data.queue ?? '/queue') : null,
      blocked,
      showImages,
      forms: formsView(forms, forms.submission || newSubmission()),
      priorities: PRIORITIES,
      time: formatTime,
    },
    forms.status ?? 200,
  );
}
