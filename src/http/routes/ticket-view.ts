import { formatTime } from '../../domain/portal/agent-view.ts';
import { PRIORITIES, ticketPage, type Article } from '../../domain/portal/web-tickets.ts';
import { sanitizeMailHtml } from '../render/sanitize-mail.ts';
import { render, type Portal, type PortalContext } from '../context.ts';
import { newSubmission } from './form-input.ts';

/** What a re-shown ticket page keeps of a form that was not accepted. */
export interface TicketFormState {
  /** The reply form's errors and text. */
  errors?: Record<string, string>;
  reply?: string;
  /** An agent action's form: which one, its errors (by field, or `form`), its values. */
  act?: { action: string; errors: Record<string, string>; values: Record<string, string> };
  submission?: string;
  status?: number;
}

const ARTICLE_LABELS: Record<string, string> = {
  waiting: 'Request for information',
  solve: 'Solution',
  hold: 'Put on hold',
  close: 'Closed',
  assign: 'Assignment',
  reopen: 'Reopened',
};

export function notFound(portal: Portal, ctx: PortalContext): void {
  render(portal, ctx, 'error', { title: 'Ticket not found', message: 'There is no ticket with this number that you can see.' }, 404);
}

/**
 * Renders a ticket's page for the viewer: the conversation (HTML mail sanitised, remote images
 * only on request), and for an agent the actions, SLA clock, timers and audit log.
 */
export async function showTicket(portal: Portal, ctx: PortalContext, number: number | null, form: TicketFormState = {}): Promise<void> {
  const { domain, config } = portal;
  const page = number ? await ticketPage(domain, ctx.state.viewer!, number) : null;
  if (!page) return notFound(portal, ctx);
  const showImages = ctx.query.images === '1' && !form.status;
  let blocked = 0;
  const articles = page.articles.map((a: Article) => {
    let html: string | null = null;
    if (a.html) {
      const cid = new Map(a.attachments.map((att, i) => [att.contentId, `/tickets/${page.ticket.number}/articles/${a._id}/attachments/${i}`]));
      const clean = sanitizeMailHtml(a.html, { allowRemoteImages: showImages, cidUrl: (id) => cid.get(id) ?? null });
      blocked += clean.blockedRemoteImages;
      html = clean.html;
    }
    const action = page.agent?.articleActions[String(a._id)];
    return { ...a, id: String(a._id), html, label: a.internal ? 'Internal note' : action ? (ARTICLE_LABELS[action] ?? null) : null, sender: page.senders?.marks[String(a._id)] ?? null };
  });
  if (showImages) {
    // Remote images were asked for on this page only.
    const csp = ctx.response.get('Content-Security-Policy');
    ctx.set('Content-Security-Policy', csp.replace("img-src 'self'", "img-src 'self' https: http:"));
  }
  const unitName = (key: string) => domain.units.get(key)?.name ?? key;
  render(
    portal,
    ctx,
    'ticket',
    {
      ticket: page.ticket,
      articles,
      role: page.role,
      agent: page.agent,
      requesterActions: page.requester,
      unverifiedMail: page.senders?.unverified ?? 0,
      unit: unitName(page.ticket.su),
      url: `${config.publicUrl}/tickets/${page.ticket.number}`,
      blocked,
      showImages,
      submission: form.submission || newSubmission(),
      errors: form.errors ?? {},
      reply: form.reply ?? '',
      act: form.act ?? { action: '', errors: {}, values: {} },
      priorities: PRIORITIES,
      time: formatTime,
    },
    form.status ?? 200,
  );
}
