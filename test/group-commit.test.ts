import { randomBytes } from 'node:crypto';
import test from 'ava';
import { Types } from 'mongoose';
import nodemailer from 'nodemailer';
import { countQueued, WorkQueue } from '../src/db/coordination/index.ts';
import { inboxRaw, insertInboxItems, queueInboxItems, withdrawInboxItems } from '../src/db/inbox-batch.ts';
import type { Article } from '../src/db/models/article.ts';
import type { InboxItem } from '../src/db/models/inbox.ts';
import { openStore, type Store } from '../src/db/store.ts';
import { startTestDatabase } from './helpers/database.ts';
import { databasePerTest } from './helpers/database-per-test.ts';
import { HELPDESK, startTestHelpgate } from './helpers/helpgate.ts';
import { until } from './helpers/wait.ts';

const database = databasePerTest(test);
const MAILS = 200;
/** Pooled nodemailer transports, 5 connections each: 40 SMTP sessions sending at once. */
const TRANSPORTS = 8;

interface TestMail {
  index: number;
  messageId: string;
  envelope: { from: string; to: string[] };
  raw: string;
}

/** What the sender of a mail was finally told. */
interface Answer {
  mail: TestMail;
  code: number;
  response: string;
}

function composeMails(): TestMail[] {
  const run = randomBytes(4).toString('hex');
  return Array.from({ length: MAILS }, (_, index) => {
    // One sender per mail: each opens a ticket of its own.
    const from = `sender-${index}@group.example`;
    const messageId = `<group-${run}-${index}@group.example>`;
    const raw = [
      `From: Sender ${index} <${from}>`,
      `To: ${HELPDESK}`,
      `Subject: Group commit request ${run} ${index}`,
      `Message-ID: ${messageId}`,
      'Date: Mon, 02 Jun 2025 10:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      `Request ${index}. ${'Some detail. '.repeat(20)}`,
      '',
    ].join('\r\n');
    return { index, messageId, envelope: { from, to: [HELPDESK] }, raw };
  });
}

/** Sends every mail at once (or once `before` lets it) over TRANSPORTS × 5 connections; resolves with every final answer. */
async function sendAll(port: number, mails: TestMail[], hooks: { onAnswer?: (a: Answer) => void; before?: (mail: TestMail) => Promise<void> } = {}): Promise<Answer[]> {
  const transports = Array.from({ length: TRANSPORTS }, () =>
    nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, pool: true, maxConnections: 5, maxMessages: Infinity }),
  );
  try {
    return await Promise.all(
      mails.map(async (mail) => {
        let answer: Answer;
        await hooks.before?.(mail);
        try {
          const info = await transports[mail.index % TRANSPORTS]!.sendMail({ envelope: mail.envelope, raw: mail.raw });
          answer = { mail, code: Number(info.response.slice(0, 3)), response: info.response };
        } catch (err) {
          const e = err as { responseCode?: number; response?: string; message?: string };
          answer = { mail, code: e.responseCode ?? 0, response: e.response ?? e.message ?? String(err) };
        }
        hooks.onAnswer?.(answer);
        return answer;
      }),
    );
  } finally {
    for (const tr of transports) tr.close();
  }
}

/** The inbox item id a 250 names ("… queued as <id>"). */
function queuedAs(answer: Answer): string {
  const id = /queued as ([0-9a-f]{24})/.exec(answer.response)?.[1];
  if (!id) throw new Error(`no inbox id in "${answer.response}"`);
  return id;
}

/** The Message-ID in the stored raw message of each inbox item, by item id. */
async function storedMessageIds(store: Store, items: InboxItem[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const item of items) {
    const raw = await inboxRaw(store, item);
    out.set(String(item._id), /^Message-ID: (.+)$/m.exec(raw?.toString('utf8') ?? '')?.[1]?.trim() ?? '(none)');
  }
  return out;
}

/** Counts the insert commands on the collections the intake writes. */
function countIntakeInserts(store: Store): () => number {
  const { Inbox, InboxQueue, BlobChunk } = store.models;
  const intake = new Set([Inbox, InboxQueue, BlobChunk].map((m) => m.collection.collectionName));
  let inserts = 0;
  store.conn.set('debug', (collection: string, method: string) => {
    if (intake.has(collection) && /^insert/.test(method)) inserts++;
  });
  return () => inserts;
}

test('200 mails at once over 40 connections: each gets 250 naming its own stored item, in far fewer writes than 3 per mail', async (t) => {
  t.timeout(180_000);
  const h = await startTestHelpgate(t, { db: await database() });
  // The intake alone: the ingest worker would write to the same collections.
  await h.hg.ingest.stop();
  const inserts = countIntakeInserts(h.hg.store);
  const mails = composeMails();

  const answers = await sendAll(h.hg.smtp.port, mails);

  t.deepEqual(
    answers.filter((a) => a.code !== 250).map((a) => `${a.mail.index}: ${a.response}`),
    [],
    'every mail was accepted',
  );
  const items = await h.inbox();
  t.is(items.length, MAILS, 'each mail stored once');
  const stored = await storedMessageIds(h.hg.store, items);
  // The 250 a sender got names the item holding that sender's message.
  t.deepEqual(
    answers.map((a) => stored.get(queuedAs(a))),
    answers.map((a) => a.mail.messageId),
  );
  const count = inserts();
  t.log(`${count} insert commands for ${MAILS} mails`);
  t.true(count <= MAILS, `${count} insert commands for ${MAILS} mails (one by one would take ${3 * MAILS})`);
  t.true(count >= 3, 'the counter saw the intake');
});

test('the database stopped while 200 mails arrive: every 250 becomes a ticket after the restart, no 451 is stored or ticketed, nobody waits forever', async (t) => {
  t.timeout(300_000);
  const db = await startTestDatabase({ own: true });
  t.teardown(() => db.cleanup());
  const h = await startTestHelpgate(t, { db });
  const mails = composeMails();

  // The database is stopped once a fifth of the mails is in, while batches are being written.
  // The last 80 mails are sent only once it is down: an engine that finishes its work in
  // flight before it stops may well take all of the others.
  let accepted = 0;
  let stopping: Promise<void> | null = null;
  let markStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (markStopped = resolve));
  // A sender left without an answer fails the test by its timeout.
  const answers = await sendAll(h.hg.smtp.port, mails, {
    before: (mail) => (mail.index >= MAILS - 80 ? stopped : Promise.resolve()),
    onAnswer: (a) => {
      if (a.code === 250) accepted++;
      if (!stopping && accepted >= MAILS / 5) stopping = db.stop().then(markStopped);
    },
  });
  await stopping;

  const ok = answers.filter((a) => a.code === 250);
  const refused = answers.filter((a) => a.code !== 250);
  t.log(`${ok.length} accepted, ${refused.length} refused`);
  t.true(ok.length >= MAILS / 5 && refused.length > 0, `${ok.length} accepted, ${refused.length} refused`);
  t.deepEqual(
    refused.filter((a) => !/^451 4\.3\.0 /.test(a.response)).map((a) => `${a.mail.index}: ${a.response}`),
    [],
    'every refusal is 451 4.3.0',
  );

  await db.restart();
  const { Article, Inbox, InboxQueue } = h.hg.store.models;
  // Done when every accepted mail is an article and no ingest work is left: from then on
  // nothing else can become a ticket.
  await until(async () => (await Article.countDocuments({})) >= ok.length && (await InboxQueue.countDocuments({})) === 0 && (await Inbox.countDocuments({ state: 'pending' })) === 0, {
    what: 'every accepted mail ingested and the queue empty',
    timeoutMs: 180_000,
    intervalMs: 250,
  });

  // `helpgate inbox` lists exactly the accepted mails, each under the id its 250 named.
  const items = await h.inbox();
  const stored = await storedMessageIds(h.hg.store, items);
  t.deepEqual(
    [...stored].sort(),
    ok.map((a) => [queuedAs(a), a.mail.messageId] as [string, string]).sort(),
  );
  t.deepEqual(
    items.filter((i) => i.state !== 'done').map((i) => `${String(i._id)} ${i.state} ${i.lastError ?? ''}`),
    [],
  );
  // One ticket per accepted mail, none for a refused one.
  const articles = await Article.find({}).lean<Article[]>();
  t.deepEqual(articles.map((a) => a.messageId).sort(), ok.map((a) => a.mail.messageId).sort());
  t.deepEqual(
    (await h.tickets()).map((x) => x.requester.address).sort(),
    ok.map((a) => a.mail.envelope.from).sort(),
  );
});

test('what a failed batch left is withdrawn: its untouched items and their queue entries go, an item ingest took stays', async (t) => {
  const db = await database();
  const store = await openStore(db.uri, { dbName: db.dbName });
  t.teardown(() => store.close());
  const { Inbox, InboxQueue } = store.models;
  const now = new Date();
  const [untouched1, untouched2, taken, neverWritten] = Array.from({ length: 4 }, () => new Types.ObjectId());
  const item = (_id: Types.ObjectId) => ({
    _id,
    source: 'smtp' as const,
    envelope: { mailFrom: 'ada@uni.example', rcptTo: [HELPDESK], clientIp: '127.0.0.1', helo: 'client', mailbox: null },
    rawSha256: 'f'.repeat(64),
    raw: null,
    size: 100,
    receivedAt: now,
  });
  // A batch whose answer never came: its queue entries and three of its four items landed,
  // and an ingest worker claimed one of them before the withdrawal.
  await queueInboxItems(store, [taken!], now);
  await insertInboxItems(store, [item(taken!)]);
  const worker = new WorkQueue<InboxItem>({ items: Inbox, queue: InboxQueue, leaseMs: 60_000, owner: 'ingest-x', isClaimable: (d) => d.state === 'pending' });
  t.deepEqual((await worker.claim(4, new Date())).map((c) => String(c.doc._id)), [String(taken)]);
  await queueInboxItems(store, [untouched1!, untouched2!, neverWritten!], now);
  await insertInboxItems(store, [item(untouched1!), item(untouched2!)]);

  await withdrawInboxItems(store, [untouched1!, untouched2!, taken!, neverWritten!]);

  t.deepEqual((await Inbox.find({}).lean<InboxItem[]>()).map((i) => String(i._id)), [String(taken)]);
  // Only the taken item's entry is left (its claim beside it; countQueued does not count claims).
  t.deepEqual((await InboxQueue.find({ due: { $exists: true } }).lean<{ _id: unknown }[]>()).map((e) => String(e._id)), [String(taken)]);
  t.is(await countQueued(InboxQueue), 1);
});
