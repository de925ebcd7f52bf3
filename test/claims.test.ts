import test from 'ava';
import { claimNext, SlotLocks } from '../src/db/claims.ts';
import type { InboxItem } from '../src/db/models/inbox.ts';
import { openStore, type Store } from '../src/db/store.ts';
import { createDomainContext } from '../src/domain/context.ts';
import { createTicket } from '../src/domain/tickets.ts';
import { loadConfig, projectRoot } from '../src/config/load.ts';
import { createLogger } from '../src/log/logger.ts';
import { MailComposer } from '../src/mail/send/compose.ts';
import { startTestDatabase, type TestDatabase } from './helpers/database.ts';
import path from 'node:path';

let db: TestDatabase;
const stores: Store[] = [];

test.before(async () => {
  db = await startTestDatabase();
});
test.after.always(async () => {
  for (const s of stores) await s.close();
  await db.cleanup();
});

/** Separate connections, as separate helpgate processes would have. */
async function connections(n: number): Promise<Store[]> {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await openStore(db.uri, { dbName: db.dbName }));
  stores.push(...out);
  return out;
}

test.serial('each queued item is claimed by exactly one of many concurrent workers', async (t) => {
  const [a, b, c] = await connections(3);
  const now = new Date();
  const items = await a!.models.Inbox.insertMany(
    Array.from({ length: 12 }, (_, i) => ({ source: 'smtp', envelope: { mailFrom: `s${i}@x.org`, rcptTo: ['help@helpdesk.localhost'] }, rawSha256: `h${i}`, size: 1, receivedAt: now, availableAt: now })),
  );
  const claimedBy = new Map<string, string[]>();
  const worker = async (store: Store, name: string) => {
    const locks = new SlotLocks(store.models.Lock, 60_000);
    for (;;) {
      const claim = await claimNext<InboxItem>({
        model: store.models.Inbox,
        locks,
        name: 'inbox',
        filter: { state: 'pending', availableAt: { $lte: new Date() } },
        sort: { availableAt: 1 },
        owner: name,
        now: new Date(),
        update: () => ({ $set: { availableAt: new Date(Date.now() + 60_000), lockedBy: name } }),
      });
      if (!claim) return;
      const id = String(claim.doc._id);
      claimedBy.set(id, [...(claimedBy.get(id) ?? []), name]);
    }
  };
  await Promise.all([a, b, c, a, b, c].map((s, i) => worker(s!, `w${i}`)));
  t.is(claimedBy.size, items.length, 'every item was claimed');
  for (const [id, by] of claimedBy) t.is(by.length, 1, `item ${id} claimed once, not by ${by.join(' and ')}`);
});

test.serial('concurrent ticket creation from several connections gives unique, contiguous numbers', async (t) => {
  const config = loadConfig({ LOG_LEVEL: 'silent' });
  const conns = await connections(3);
  const ctxs = conns.map((store) => createDomainContext({ store, config, log: createLogger('silent'), composer: new MailComposer(path.join(projectRoot, 'templates')) }));
  const results = await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      createTicket(ctxs[i % ctxs.length]!, { originKey: `mid:<n${i}@x>`, subject: `s${i}`, requester: { address: `r${i}@x.org`, name: '' }, participants: [], su: 'first-line' }),
    ),
  );
  const numbers = results.map((r) => r.ticket.number).sort((x, y) => x - y);
  t.deepEqual(numbers, Array.from({ length: 30 }, (_, i) => 100001 + i));
  // Re-running a creation finds the existing ticket instead of making another.
  const again = await createTicket(ctxs[0]!, { originKey: 'mid:<n7@x>', subject: 's7', requester: { address: 'r7@x.org', name: '' }, participants: [], su: 'first-line' });
  t.false(again.created);
  t.is(await conns[0]!.models.Ticket.countDocuments({}), 30);
});
