import type { InboxItem } from '../../db/models/inbox.ts';
import type { DomainContext } from '../context.ts';
import { retryInboxItem } from '../ingest/worker.ts';
import type { Viewer } from '../portal/access.ts';
import { mayOperate, opsActorOf } from './access.ts';
import { recordOpsEvent, type OpsActor } from './audit.ts';
import type { OpsResult } from './held-mail.ts';

export interface QuarantinedRow {
  id: string;
  source: InboxItem['source'];
  from: string | null;
  to: string[];
  receivedAt: Date;
  attempts: number;
  size: number;
  error: string;
}

/** Inbox items that failed INGEST_MAX_ATTEMPTS times, newest first (a read by state, for a page). */
export async function listQuarantined(ctx: DomainContext, viewer: Viewer, limit = 200): Promise<QuarantinedRow[] | null> {
  if (!mayOperate(ctx, viewer)) return null;
  const items = await ctx.store.models.Inbox.find({ state: 'quarantined' }, { raw: 0 }).sort({ receivedAt: -1 }).limit(limit).lean<InboxItem[]>();
  return items.map((i) => ({
    id: String(i._id),
    source: i.source,
    from: i.envelope.mailFrom,
    to: i.envelope.rcptTo,
    receivedAt: i.receivedAt,
    attempts: i.attempts,
    size: i.size,
    error: i.lastError ?? '',
  }));
}

/**
 * Processes a quarantined item again, as `helpgate inbox retry` does (the same function), and
 * records who asked. Only a quarantined item: the web button must not re-run finished work.
 */
export async function retryQuarantined(ctx: DomainContext, viewer: Viewer, id: string): Promise<OpsResult | null> {
  if (!mayOperate(ctx, viewer)) return null;
  return retryAndRecord(ctx, opsActorOf(viewer), 'web', id, { onlyQuarantined: true });
}

/** The inbox retry with its audit entry, for the web page and the CLI. */
export async function retryAndRecord(ctx: DomainContext, actor: OpsActor, channel: 'web' | 'cli', id: string, opts: { onlyQuarantined: boolean }): Promise<OpsResult> {
  const item = /^[0-9a-f]{24}$/i.test(id) ? await ctx.store.models.Inbox.findById(id, { state: 1, envelope: 1 }).lean<InboxItem>() : null;
  const label = item ? `from ${item.envelope.mailFrom ?? '(unknown sender)'}` : id;
  const refused = !item ? 'there is no such inbox item' : opts.onlyQuarantined && item.state !== 'quarantined' ? `it is no longer quarantined (${item.state})` : undefined;
  if (!refused) await retryInboxItem(ctx, id);
  await recordOpsEvent(ctx, { action: 'inbox.retry', target: { kind: 'inbox', id, label }, actor, channel, ...(refused ? { refused } : {}) });
  return refused ? { ok: false, reason: refused } : { ok: true, done: `The message ${label} is being processed again.` };
}
