import { enqueueWork } from '../../db/coordination/index.ts';
import type { DomainContext } from '../context.ts';

/**
 * Puts inbox items back in the ingest queue, due now (a retry, or held mail once its sender is
 * known). Call it after the items are pending again.
 */
export async function requeueInboxItems(ctx: DomainContext, ids: unknown[]): Promise<void> {
  await enqueueWork(ctx.store.models.InboxQueue, ids, ctx.now());
}
