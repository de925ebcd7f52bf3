import type { OutboxMail } from '../../db/models/outbox.ts';
import { cancelFailedMail, isOutboxId, retryFailedMail, troubledMails } from '../../mail/send/outbox-admin.ts';
import type { DomainContext } from '../context.ts';
import type { Viewer } from '../portal/access.ts';
import { mayOperate, opsActorOf } from './access.ts';
import { recordOpsEvent } from './audit.ts';
import type { OpsResult } from './held-mail.ts';

export interface OutboundRow {
  id: string;
  kind: string;
  to: string[];
  subject: string;
  ticketNumber: number | null;
  attempts: number;
  /** The relay's answer (or the connection error) of the last attempt. */
  answer: string;
  /** When it failed; for deferred mail, when it is tried next. */
  at: Date;
}

const rowOf = (m: OutboxMail, at: Date): OutboundRow => ({
  id: String(m._id),
  kind: m.kind,
  to: [...m.to, ...m.cc],
  subject: m.subject,
  ticketNumber: m.ticketNumber,
  attempts: m.attempts,
  answer: m.lastError ?? '',
  at,
});

/** Outbound mail given up (refused by the relay, or out of retries) and mail still being retried. */
export async function listFailedMail(ctx: DomainContext, viewer: Viewer, limit = 200): Promise<{ failed: OutboundRow[]; deferred: OutboundRow[] } | null> {
  if (!mayOperate(ctx, viewer)) return null;
  const { failed, deferred } = await troubledMails(ctx.store, limit);
  return { failed: failed.map((m) => rowOf(m, m.updatedAt)), deferred: deferred.map((m) => rowOf(m, m.dueAt)) };
}

const NOT_FAILED = 'it is no longer failed (retried or cancelled meanwhile)';

/** Sends a failed mail again (the same message) and records who asked. */
export async function retryFailed(ctx: DomainContext, viewer: Viewer, id: string): Promise<OpsResult | null> {
  if (!mayOperate(ctx, viewer)) return null;
  const mail = isOutboxId(id) ? await retryFailedMail(ctx.store, id, ctx.now()) : null;
  if (mail) ctx.mailQueued();
  await recordOpsEvent(ctx, { action: 'outbox.retry', target: { kind: 'outbox', id, label: mail ? `${mail.subject} to ${mail.to.join(', ')}` : id }, actor: opsActorOf(viewer), channel: 'web', ...(mail ? {} : { refused: NOT_FAILED }) });
  return mail ? { ok: true, done: `The mail "${mail.subject}" to ${mail.to.join(', ')} is being sent again.` } : { ok: false, reason: NOT_FAILED };
}

/** Gives a failed mail up for good and records who did. */
export async function cancelFailed(ctx: DomainContext, viewer: Viewer, id: string): Promise<OpsResult | null> {
  if (!mayOperate(ctx, viewer)) return null;
  const mail = isOutboxId(id) ? await cancelFailedMail(ctx.store, id) : null;
  await recordOpsEvent(ctx, { action: 'outbox.cancel', target: { kind: 'outbox', id, label: mail ? `${mail.subject} to ${mail.to.join(', ')}` : id }, actor: opsActorOf(viewer), channel: 'web', ...(mail ? {} : { refused: NOT_FAILED }) });
  return mail ? { ok: true, done: `The mail "${mail.subject}" to ${mail.to.join(', ')} was cancelled: it will not be sent.` } : { ok: false, reason: NOT_FAILED };
}
