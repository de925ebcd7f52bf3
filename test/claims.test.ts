import test from 'ava';
import { Types } from 'mongoose';
import { enqueueWork, WorkQueue } from '../src/db/coordination/index.ts';
import type { InboxItem } from '../src/db/models/inbox.ts';
import { openStore, type Store } from '../src/db/store.ts';
import { createDomainContext } from '../src/domain/context.ts';
import { addArticle, createTicket, findTicketByNumber, ticketArticles } from '../src/domain/tickets.ts';
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
  await enqueueWork(a!.models.InboxQueue, items.map((i) => i._id), now);
  const claimedBy = new Map<string, string[]>();
  const worker = async (store: Store, name: string) => {
    const queue = new WorkQueue<InboxItem>({ items: store.models.Inbox, queue: store.models.InboxQueue, leaseMs: 60_000, owner: name, isClaimable: (doc) => doc.state === 'pending' });
    for (;;) {
      const claims = await queue.claim(2, new Date());
      if (!claims.length) return;
      for (const claim of claims) {
        const id = String(claim.doc._id);
        claimedBy.set(id, [...(claimedBy.get(id) ?? []), name]);
      }
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

test.serial('a claim lapses after its lease; a settled item leaves the queue; a retried one comes back when due', async (t) => {
  const [store] = await connections(1);
  const { Inbox, InboxQueue } = store!.models;
  await InboxQueue.deleteMany({});
  const t0 = new Date();
  const mk = (state: string) => ({ source: 'smtp', envelope: { mailFrom: 'a@x.org', rcptTo: ['help@helpdesk.localhost'] }, rawSha256: 'h', size: 1, receivedAt: t0, availableAt: t0, state });
  const [pending, done] = await Inbox.insertMany([mk('pending'), mk('done')]);
  await enqueueWork(InboxQueue, [pending!._id, done!._id], t0);
  const queue = (owner: string) => new WorkQueue<InboxItem>({ items: Inbox, queue: InboxQueue, leaseMs: 30_000, owner, isClaimable: (doc) => doc.state === 'pending' });
  const w1 = queue('w1');
  const claimed = await w1.claim(10, t0);
  t.deepEqual(claimed.map((c) => [String(c.doc._id), c.attempt]), [[String(pending!._id), 1]], 'only the pending item is claimed');
  t.is(await InboxQueue.countDocuments({ _id: done!._id }), 0, 'the entry of the settled item is dropped');
  // Nobody else gets it within the lease; another worker does after it (w1 "died").
  t.deepEqual(await queue('w2').claim(10, new Date(t0.getTime() + 10_000)), []);
  const w3 = queue('w3');
  const retaken = await w3.claim(10, new Date(t0.getTime() + 40_000));
  t.deepEqual(retaken.map((c) => [String(c.doc._id), c.attempt]), [[String(pending!._id), 2]], 'taken over as attempt 2');
  // w1 wakes up late: its settlement is refused, the item stays w3's.
  await w1.settle([{ id: pending!._id, update: { $set: { note: 'late' } }, retryAt: null }]);
  t.is((await Inbox.findById(pending!._id).lean<InboxItem>())?.note, null);
  const retryAt = new Date(t0.getTime() + 100_000);
  await w3.settle([{ id: pending!._id, update: { $set: { note: 'retry' } }, retryAt }]);
  t.deepEqual(await queue('w4').claim(10, new Date(t0.getTime() + 90_000)), [], 'not before it is due again');
  const w5 = queue('w5');
  const again = await w5.claim(10, new Date(t0.getTime() + 101_000));
  t.is(again[0]?.attempt, 3);
  await w5.settle([{ id: pending!._id, update: { $set: { note: 'done' } }, retryAt: null }]);
  t.is(await InboxQueue.countDocuments({}), 0, 'the entry and its claims are gone');
});

test.serial('a ticket is found by its number', async (t) => {
  const config = loadConfig({ LOG_LEVEL: 'silent' });
  const [store] = await connections(1);
  const ctx = createDomainContext({ store: store!, config, log: createLogger('silent'), composer: new MailComposer(path.join(projectRoot, 'templates')) });
  const { ticket } = await createTicket(ctx, { originKey: 'mid:<lookup@x>', subject: 'look', requester: { address: 'l@x.org', name: '' }, participants: [], su: 'first-line' });
  t.is(String((await findTicketByNumber(ctx, ticket.number))?._id), String(ticket._id));
  t.is(await findTicketByNumber(ctx, ticket.number + 1000), null);
  t.is(await findTicketByNumber(ctx, Number.NaN), null);
});

test.serial('the same message created concurrently from several connections is one ticket and takes one number', async (t) => {
  const config = loadConfig({ LOG_LEVEL: 'silent' });
  const conns = await connections(3);
  const ctxs = conns.map((store) => createDomainContext({ store, config, log: createLogger('silent'), composer: new MailComposer(path.join(projectRoot, 'templates')) }));
  const before = await conns[0]!.models.Ticket.countDocuments({});
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) => createTicket(ctxs[i % 3]!, { originKey: 'mid:<same@x>', subject: 'same', requester: { address: 'same@x.org', name: '' }, participants: [], su: 'first-line' })),
  );
  t.is(new Set(results.map((r) => String(r.ticket._id))).size, 1);
  t.is(results.filter((r) => r.created).length, 1);
  t.is(new Set(results.map((r) => r.ticket.number)).size, 1);
  t.is(await conns[0]!.models.Ticket.countDocuments({}), before + 1);
  const next = await createTicket(ctxs[1]!, { originKey: 'mid:<after-same@x>', subject: 'after', requester: { address: 'same@x.org', name: '' }, participants: [], su: 'first-line' });
  t.is(next.ticket.number, results[0]!.ticket.number + 1, 'no number was taken in vain');
});

test.serial('articles added at once from several connections are all on the ticket, each once, oldest first', async (t) => {
  const config = loadConfig({ LOG_LEVEL: 'silent' });
  const conns = await connections(3);
  const ctxs = conns.map((store) => createDomainContext({ store, config, log: createLogger('silent'), composer: new MailComposer(path.join(projectRoot, 'templates')) }));
  const { ticket } = await createTicket(ctxs[0]!, { originKey: 'mid:<slots@x>', subject: 'slots', requester: { address: 's@x.org', name: '' }, participants: [], su: 'first-line' });
  await Promise.all(
    Array.from({ length: 20 }, (_, i) => addArticle(ctxs[i % 3]!, ticket, { key: `mid:<slot-${i}@x>`, direction: 'in', authorRole: 'requester', text: `article ${i}` })),
  );
  // A re-run of one of them adds nothing.
  await addArticle(ctxs[1]!, ticket, { key: 'mid:<slot-3@x>', direction: 'in', authorRole: 'requester', text: 'article 3' });
  const articles = await ticketArticles(ctxs[2]!, { _id: ticket._id });
  t.deepEqual(articles.map((a) => a.text).sort(), Array.from({ length: 20 }, (_, i) => `article ${i}`).sort());
  const times = articles.map((a) => new Date(a.createdAt).getTime());
  t.deepEqual(times, [...times].sort((x, y) => x - y), 'oldest first');
});

test.serial('a worker settling late, after the worker that took its item over has settled it, changes nothing', async (t) => {
  const [store] = await connections(1);
  const { Inbox, InboxQueue } = store!.models;
  await InboxQueue.deleteMany({});
  const t0 = new Date();
  const [item] = await Inbox.insertMany([{ source: 'smtp', envelope: { mailFrom: 'late@x.org', rcptTo: ['help@helpdesk.localhost'] }, rawSha256: 'h', size: 1, receivedAt: t0, availableAt: t0 }]);
  await enqueueWork(InboxQueue, [item!._id], t0);
  const queue = (owner: string) => new WorkQueue<InboxItem>({ items: Inbox, queue: InboxQueue, leaseMs: 30_000, owner, isClaimable: (doc) => doc.state === 'pending' });
  const slow = queue('slow');
  t.is((await slow.claim(10, t0)).length, 1);
  // The slow worker's lease lapses; another takes the item over and finishes it.
  const fast = queue('fast');
  t.is((await fast.claim(10, new Date(t0.getTime() + 40_000)))[0]?.attempt, 2);
  await fast.settle([{ id: item!._id, update: { $set: { state: 'done', note: 'fast' } }, retryAt: null }]);
  t.is(await InboxQueue.countDocuments({}), 0, 'entry and every claim gone');
  // The slow one gives up on it at last: the item stays done.
  await slow.settle([{ id: item!._id, update: { $set: { state: 'quarantined', note: 'slow' } }, retryAt: null }]);
  const stored = await Inbox.findById(item!._id).lean<InboxItem>();
  t.deepEqual([stored?.state, stored?.note], ['done', 'fast']);
});

test.serial('an item claimed while it was still being written gets a full lease when it is handed out', async (t) => {
  const [store] = await connections(1);
  const { Inbox, InboxQueue } = store!.models;
  await InboxQueue.deleteMany({});
  const t0 = new Date();
  const at = (s: number) => new Date(t0.getTime() + s * 1000);
  const queue = (owner: string) => new WorkQueue<InboxItem>({ items: Inbox, queue: InboxQueue, leaseMs: 30_000, owner, isClaimable: (doc) => doc.state === 'pending' });
  // The entry is written first; the item comes later (a slow group commit).
  const item = { _id: new Types.ObjectId(), source: 'smtp', state: 'pending', envelope: { mailFrom: 'early@x.org', rcptTo: ['help@helpdesk.localhost'] }, rawSha256: 'h', size: 1, receivedAt: t0, availableAt: t0 };
  await enqueueWork(InboxQueue, [item._id], t0);
  const w1 = queue('w1');
  t.deepEqual(await w1.claim(10, t0), [], 'claimed, but nothing to hand out yet');
  await Inbox.collection.insertOne(item as never);
  // Handed out 25 s after the claim, with 5 s of the first lease left.
  t.is((await w1.claim(10, at(25)))[0]?.attempt, 1);
  // 15 s later w1 is still at work: within a lease from when it got the item, nobody takes it.
  t.deepEqual(await queue('w2').claim(10, at(40)), [], 'still w1\'s');
  await w1.settle([{ id: item._id, update: { $set: { state: 'done' } }, retryAt: null }]);
  t.is((await Inbox.findById(item._id).lean<InboxItem>())?.state, 'done');
});
