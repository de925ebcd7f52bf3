import { requeueStranded } from './coordination/index.ts';
import type { Store } from './store.ts';

/**
 * Puts back in their queues the inbox items still pending and the outbox mails still queued that
 * have no queue entry (see requeueStranded), so that no stored mail waits forever. Run by the
 * housekeeping loop; returns how many of each were re-queued.
 */
export async function requeueStrandedWork(store: Store, now: Date): Promise<{ inbox: number; outbox: number }> {
  const { Inbox, InboxQueue, Outbox, OutboxQueue } = store.models;
  const inbox = await requeueStranded({ items: Inbox, queue: InboxQueue, needsWork: { state: 'pending' }, dueField: 'availableAt' }, now);
  const outbox = await requeueStranded({ items: Outbox, queue: OutboxQueue, needsWork: { state: 'queued' }, dueField: 'dueAt' }, now);
  return { inbox, outbox };
}
