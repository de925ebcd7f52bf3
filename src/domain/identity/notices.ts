import { LOOP_HEADER } from '../../mail/parse/automated.ts';
import { enqueueMail, outboxIdFor, type Enqueued } from '../../mail/send/outbox.ts';
import type { DomainContext } from '../context.ts';
import { formatAddress } from '../notify.ts';
import { bounceAddressFor } from '../outbound/verp.ts';

export interface Notice {
  /** Idempotency key: the same key queues one mail however often it is sent. */
  key: string;
  kind: string;
  /** templates/mail/<template>.txt.eta and .html.eta */
  template: string;
  to: string;
  subject: string;
  /** RFC 3834: auto-replied for an answer to a mail, auto-generated otherwise. */
  autoSubmitted: 'auto-replied' | 'auto-generated';
  inReplyTo?: string | null;
  view: object;
}

/**
 * Queues a mail about a person's account or held mail (no ticket yet): from the helpdesk
 * address, with our loop header and the RFC 3834 headers, so that no auto-responder answers it
 * and a copy that comes back is recognised.
 */
export async function sendNotice(ctx: DomainContext, notice: Notice): Promise<Enqueued> {
  const { helpdesk, publicUrl } = ctx.config;
  const { text, html } = ctx.composer.render(notice.template, { helpdesk, publicUrl, subject: notice.subject, ...notice.view });
  const enq = await enqueueMail(ctx.store, helpdesk.domain, {
    key: notice.key,
    kind: notice.kind,
    envelopeFrom: await bounceAddressFor(ctx, outboxIdFor(notice.key)),
    from: formatAddress(helpdesk.name, helpdesk.address),
    to: [notice.to],
    replyTo: helpdesk.address,
    subject: notice.subject,
    inReplyTo: notice.inReplyTo ?? null,
    references: notice.inReplyTo ? [notice.inReplyTo] : [],
    headers: [
      { key: LOOP_HEADER, value: helpdesk.address },
      { key: 'Auto-Submitted', value: notice.autoSubmitted },
      { key: 'X-Auto-Response-Suppress', value: 'All' },
    ],
    text,
    html,
  });
  if (enq.created) ctx.mailQueued();
  return enq;
}
