import test from 'ava';
import { claimNext, deferWork, finishWork, queueWork, SlotLocks, type QueueEntry } from '../src/db/claims.ts';
import type { InboxItem } from '../src/db/models/inbox.ts';
import { openStore, type Store } from '../src/db/store.ts';
import { createDomainContext } from '../src/domain/context.ts';
import { addArticle, createTicket, findTicketByNumber, ticketArticles } from '../src/domain/tickets.ts';
import { idFor } from '../src/db/ids.ts';
import { loadConfig, projectRoot } from '../src/config/load.ts';
import { createLogger } from '../src/log/logger.ts';
import { MailComposer } from '../src/mail/send/compose.ts';
import { startTestDatabase, type TestDatabase } from './helpers/database.ts';
import path from 'node:path';
import { Types } from 'mongoose';

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
  for (const item of items) await queueWork(a!.models.InboxQueue, item._id, now);
  const claimedBy = new Map<string, string[]>();
  const worker = async (store: Store, name: string) => {
    const locks = new SlotLocks(store.models.Lock, 60_000);
    for (;;) {
      const claim = await claimNext<InboxItem>({
        model: store.models.Inbox,
        queue: store.models.InboxQueue,
        locks,
        name: 'inbox',
        owner: name,
        now: new Date(),
        leaseMs: 60_000,
        update: () => ({ $set: { lockedBy: name } }),
        isClaimable: (doc) => doc.state === 'pending',
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

test.serial('a claimed item leaves the due queue for one lease; stale and orphan entries are dropped', async (t) => {
  const [store] = await connections(1);
  const { Inbox, InboxQueue } = store!.models;
  await InboxQueue.deleteMany({});
  const t0 = new Date();
  const mk = (state: string) => ({ source: 'smtp', envelope: { mailFrom: 'a@x.org', rcptTo: ['help@helpdesk.localhost'] }, rawSha256: 'h', size: 1, receivedAt: t0, availableAt: t0, state });
  const [pending, done] = await Inbox.insertMany([mk('pending'), mk('done')]);
  const young = new Types.ObjectId();
  const old = new Types.ObjectId();
  for (const id of [pending!._id, done!._id, young]) await queueWork(InboxQueue, id, t0);
  await InboxQueue.collection.insertOne({ _id: old, due: t0, since: new Date(t0.getTime() - 5 * 60_000) } as never);
  const claim = (now: Date, owner: string) =>
    claimNext<InboxItem>({
      model: Inbox,
      queue: InboxQueue,
      locks: new SlotLocks(store!.models.Lock, 1000),
      name: 'inbox-q',
      owner,
      now,
      leaseMs: 30_000,
      update: () => ({ $set: { lockedBy: owner } }),
      isClaimable: (doc) => doc.state === 'pending',
    });
  const claimed = [];
  for (let c = await claim(t0, 'w1'); c; c = await claim(t0, 'w1')) claimed.push(c.doc);
  t.deepEqual(claimed.map((d) => String(d._id)), [String(pending!._id)], 'only the pending item is claimed, once');
  t.is(claimed[0]?.lockedBy, 'w1');
  // The entry of the settled item and the old orphan are gone; the young orphan waits a moment.
  const left = (await InboxQueue.find({}).lean<{ _id: unknown; due: Date }[]>()).map((e) => [String(e._id), e.due.getTime() - t0.getTime()] as const);
  const after = new Map(left);
  t.false(after.has(String(done!._id)));
  t.false(after.has(String(old)));
  t.true((after.get(String(young)) ?? 0) > 0, 'a young entry without its item is looked at again later');
  t.is(after.get(String(pending!._id)), 30_000, 'the claimed item is due again one lease later');
  // Nobody else gets it within the lease, another worker does after it.
  t.is(await claim(new Date(t0.getTime() + 10_000), 'w2'), null);
  const retaken = await claim(new Date(t0.getTime() + 40_000), 'w2');
  t.is(String(retaken?.doc._id), String(pending!._id));
  await finishWork(InboxQueue, pending!._id);
  t.is(await claim(new Date(t0.getTime() + 100_000), 'w3'), null);
});

test.serial('a ticket is found by its number through its reservation, never through a stale one', async (t) => {
  const config = loadConfig({ LOG_LEVEL: 'silent' });
  const [store] = await connections(1);
  const ctx = createDomainContext({ store: store!, config, log: createLogger('silent'), composer: new MailComposer(path.join(projectRoot, 'templates')) });
  const { ticket } = await createTicket(ctx, { originKey: 'mid:<lookup@x>', subject: 'look', requester: { address: 'l@x.org', name: '' }, participants: [], su: 'first-line' });
  t.is(String((await findTicketByNumber(ctx, ticket.number))?._id), String(ticket._id));
  t.is(await findTicketByNumber(ctx, ticket.number + 1000), null);
  t.is(await findTicketByNumber(ctx, Number.NaN), null);
  // A reservation left by a crash before its ticket was written points nowhere: not found.
  await store!.models.TicketNumber.collection.insertOne({ _id: 999_999, ticketId: ticket._id } as never);
  t.is(await findTicketByNumber(ctx, 999_999), null);
  await store!.models.TicketNumber.deleteOne({ _id: 999_999 });
});

test.serial('a buffered queue entry deferred after the scan is not claimed before it is due', async (t) => {
  const [store] = await connections(1);
  const { Inbox, InboxQueue } = store!.models;
  await InboxQueue.deleteMany({});
  const t0 = new Date();
  const [a, b] = await Inbox.insertMany(
    [0, 1].map((i) => ({ source: 'smtp', envelope: { mailFrom: `b${i}@x.org`, rcptTo: ['help@helpdesk.localhost'] }, rawSha256: 'h', size: 1, receivedAt: t0, availableAt: t0 })),
  );
  for (const item of [a!, b!]) await queueWork(InboxQueue, item._id, t0);
  const buffer: QueueEntry[] = [];
  const claim = () =>
    claimNext<InboxItem>({
      model: Inbox,
      queue: InboxQueue,
      locks: new SlotLocks(store!.models.Lock, 1000),
      name: 'inbox-b',
      owner: 'wb',
      now: t0,
      leaseMs: 30_000,
      buffer,
      update: () => ({ $set: { lockedBy: 'wb' } }),
      isClaimable: (doc) => doc.state === 'pending',
    });
  const first = await claim();
  t.truthy(first);
  t.is(buffer.length, 1, 'the scan kept the other due entry for the next claim');
  // Another process retries the remaining item later than now.
  const other = String(first!.doc._id) === String(a!._id) ? b! : a!;
  await deferWork(InboxQueue, other._id, new Date(t0.getTime() + 60_000));
  t.is(await claim(), null);
});

test.serial('the same message created concurrently from several connections is one ticket and takes one number', async (t) => {
  const config = loadConfig({ LOG_LEVEL: 'silent' });
  const conns = await connections(3);
  const ctxs = conns.map((store) => createDomainContext({ store, config, log: createLogger('silent'), composer: new MailComposer(path.join(projectRoot, 'templates')) }));
  const before = await conns[0]!.models.TicketNumber.countDocuments({});
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) => createTicket(ctxs[i % 3]!, { originKey: 'mid:<same@x>', subject: 'same', requester: { address: 'same@x.org', name: '' }, participants: [], su: 'first-line' })),
  );
  t.is(new Set(results.map((r) => String(r.ticket._id))).size, 1);
  t.is(results.filter((r) => r.created).length, 1);
  t.is(new Set(results.map((r) => r.ticket.number)).size, 1);
  t.is(await conns[0]!.models.TicketNumber.countDocuments({}), before + 1, 'no number was reserved in vain');
});

test.serial('a run killed after reserving its number leaves no gap: the re-run, in a fresh process, takes that number', async (t) => {
  const config = loadConfig({ LOG_LEVEL: 'silent' });
  const [first, restarted] = await connections(2);
  const ctxOf = (store: Store) => createDomainContext({ store, config, log: createLogger('silent'), composer: new MailComposer(path.join(projectRoot, 'templates')) });
  const make = (ctx: ReturnType<typeof ctxOf>, n: string) => createTicket(ctx, { originKey: `mid:<${n}@killed>`, subject: n, requester: { address: 'k@x.org', name: '' }, participants: [], su: 'first-line' });
  const { ticket: before } = await make(ctxOf(first!), 'before');
  // What the killed run left behind: its creation lock and the reservation of the next number,
  // but no ticket. Its lock has lapsed by the time the restarted process runs.
  const killedId = idFor('ticket', 'mid:<killed@killed>');
  await first!.models.TicketNumber.collection.insertOne({ _id: before.number + 1, ticketId: killedId } as never);
  await first!.models.Lock.collection.insertOne({ _id: `create-ticket:${String(killedId)}`, owner: 'createTicket', expiresAt: new Date(Date.now() - 1000) } as never);
  const { ticket: killed, created } = await make(ctxOf(restarted!), 'killed');
  t.true(created);
  t.is(killed.number, before.number + 1, 'the re-run takes the number its first run reserved');
  const { ticket: after } = await make(ctxOf(restarted!), 'after');
  t.is(after.number, before.number + 2);
  t.is(await first!.models.Lock.countDocuments({ _id: `create-ticket:${String(killedId)}` }), 0, 'the lock is gone once the ticket exists');
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
