import type { OpsEvent } from '../../db/models/ops-event.ts';
import type { DomainContext } from '../context.ts';

export type OpsActor = OpsEvent['actor'];
export type OpsAction = 'held.release' | 'held.discard' | 'inbox.retry' | 'outbox.retry' | 'outbox.cancel';

export interface OpsRecord {
  action: OpsAction;
  target: OpsEvent['target'];
  actor: OpsActor;
  channel: OpsEvent['channel'];
  /** Why it was not done; absent when it was. */
  refused?: string;
}

/** Writes one audit entry: who did what to which item, when, and whether it was done. */
export async function recordOpsEvent(ctx: DomainContext, record: OpsRecord): Promise<void> {
  await ctx.store.models.OpsEvent.create({
    action: record.action,
    target: record.target,
    actor: record.actor,
    channel: record.channel,
    at: ctx.now(),
    outcome: record.refused ? 'refused' : 'applied',
    reason: record.refused ?? null,
  });
  ctx.log.info({ action: record.action, target: record.target.id, actor: record.actor.address ?? record.actor.name, refused: record.refused }, 'operation on mail');
}

/** The latest audit entries of these actions, newest first. */
export function recentOpsEvents(ctx: DomainContext, actions: readonly OpsAction[], limit = 20): Promise<OpsEvent[]> {
  return ctx.store.models.OpsEvent.find({ action: { $in: actions } }).sort({ at: -1 }).limit(limit).lean<OpsEvent[]>();
}
