import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { InboxItem } from '../src/db/models/inbox.ts';
import type { IntakeStatus } from '../src/db/models/intake.ts';
import { openStore, type Store } from '../src/db/store.ts';
import { CaptureSmtp } from './helpers/capture-smtp.ts';
import { uriWithDatabase } from './helpers/cli.ts';
import { databasePerTest } from './helpers/database-per-test.ts';
import { Dovecot } from './helpers/dovecot.ts';
import { startTestHelpgate } from './helpers/helpgate.ts';
import { HelpgateProcess } from './helpers/helpgate-process.ts';
import { articlesByMessageId, composeMails, sha256, storedHashes, writeImapConfig, type TestMail } from './helpers/imap-flow.ts';
import { until } from './helpers/wait.ts';

const database = databasePerTest(test);
/** Messages drained under SIGKILL (the 500; IMAP_CRASH_TEST_MAILS to run it smaller on a busy machine). */
const CRASH_MAILS = Number(process.env.IMAP_CRASH_TEST_MAILS ?? 500);
let dovecot: Dovecot;
const dir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-imap-crash-'));

test.before(async () => {
  dovecot = await new Dovecot(['crash', 'pair', 'restart'].map((name) => ({ name, password: 'secret' }))).start();
});
test.after.always(async () => {
  await dovecot?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const isAck = (m: { header(name: string): string | null }) => m.header('auto-submitted') === 'auto-replied';

/** `helpgate serve` processes on one database and one mailbox, sending to one capture relay. */
async function processesOn(t: ExecutionContext, user: string, count: number) {
  const db = await database();
  const relay = await new CaptureSmtp().listen();
  t.teardown(() => relay.close());
  const uri = uriWithDatabase(db.uri, db.dbName);
  const config = writeImapConfig(dir, dovecot, [{ user }]);
  const processes = Array.from({ length: count }, () => {
    const dataDir = mkdtempSync(path.join(dir, 'data-'));
    const p = new HelpgateProcess({
      ...process.env,
      MONGODB_URI: uri,
      MONGODB_TIMEOUT_MS: '2000',
      HELPGATE_CONFIG: config,
      HELPGATE_DATA_DIR: dataDir,
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: '0',
      HTTP_PORT: '0',
      DEV_AAI_PORT: '0',
      UNBOUND_SENDERS: 'accept',
      OUTBOUND_SMTP_URL: relay.url,
      INGEST_LEASE_SECONDS: '2',
      // As in crash.test.ts: a lease a live outbox worker keeps, so only a killed one's mails repeat.
      OUTBOX_LEASE_SECONDS: '20',
      OUTBOX_BACKOFF_SECONDS: '1,1,1,1,1',
      IMAP_LEASE_SECONDS: '5',
      IMAP_RETRY_MAX_SECONDS: '2',
      IMAP_BATCH: '20',
      LOG_LEVEL: 'warn',
    });
    t.teardown(() => p.kill('SIGKILL'));
    return p;
  });
  const store = await openStore(uri, { timeoutMs: 5000 });
  t.teardown(() => store.close());
  return { processes, relay, store };
}

/** Every message that left the folder has been stored: nothing was moved before it was stored. */
async function assertMovedOnlyWhenStored(t: ExecutionContext, store: Store, user: string, mails: TestMail[], when: string) {
  const shaOf = new Map(mails.map((m) => [m.messageId, sha256(m.raw)]));
  const [inbox, processed, stored] = [await dovecot.list(user, 'INBOX'), await dovecot.list(user, 'Processed'), await storedHashes(store)];
  t.is(inbox.length + processed.length, mails.length, `${when}: every message is in INBOX or Processed, once`);
  const movedUnstored = processed.filter((m) => !stored.has(shaOf.get(m.messageId!)!));
  t.deepEqual(movedUnstored, [], `${when}: moved to Processed before being stored`);
  return { inbox: inbox.length, processed: processed.length, stored: stored.size };
}

/** Waits until every mail is one article and acknowledged, and nothing is left to do. */
async function waitUntilDone(store: Store, relay: CaptureSmtp, mails: TestMail[], timeoutMs: number, output: () => string) {
  const { Inbox, Outbox } = store.models;
  await until(
    async () => {
      const acked = new Set(relay.mails.filter(isAck).map((m) => m.parsed.inReplyTo));
      if (acked.size < mails.length) return false;
      return (await Inbox.countDocuments({ state: 'pending' })) === 0 && (await Outbox.countDocuments({ state: 'queued' })) === 0;
    },
    { what: `all ${mails.length} mails ticketed and acknowledged`, timeoutMs, intervalMs: 250 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; acknowledged ${new Set(relay.mails.filter(isAck).map((m) => m.parsed.inReplyTo)).size}; output:\n${output().slice(-2000)}`);
  });
}

/** Exactly one article and one (distinct) acknowledgement per mail, to its sender. */
async function assertExactlyOnce(t: ExecutionContext, store: Store, relay: CaptureSmtp, mails: TestMail[], maxResent: number) {
  const counts = await articlesByMessageId(store);
  t.is([...counts.values()].reduce((a, b) => a + b, 0), mails.length, 'articles in all');
  t.deepEqual(
    mails.filter((m) => counts.get(m.messageId) !== 1).map((m) => `${m.messageId}: ${counts.get(m.messageId) ?? 0}`),
    [],
    'mails without exactly one article',
  );
  t.is(await store.models.Ticket.countDocuments({}), mails.length);
  const acks = relay.mails.filter(isAck);
  const wrong: string[] = [];
  for (const m of mails) {
    const mine = acks.filter((a) => a.parsed.inReplyTo === m.messageId);
    if (new Set(mine.map((a) => a.parsed.messageId)).size !== 1 || mine.some((a) => a.envelope.rcptTo.join(',') !== m.from)) wrong.push(m.messageId);
  }
  t.deepEqual(wrong, [], 'mails not acknowledged exactly once to their sender');
  // A mail the relay took just before a kill, not yet recorded as sent, goes again (the same
  // message, same Message-ID): SMTP's at-least-once. Only mails in flight at a kill.
  t.true(acks.length - mails.length <= maxResent, `acknowledgements resent: ${acks.length - mails.length}`);
}

test.serial(`killed with SIGKILL at random points while draining ${CRASH_MAILS} messages: each one article, none lost, none acknowledged twice, none moved before stored`, async (t) => {
  t.timeout(14 * 60_000);
  const mails = composeMails(CRASH_MAILS, { bodyBytes: 200 });
  await dovecot.append('crash', 'INBOX', mails.map((m) => m.raw));
  const { processes, relay, store } = await processesOn(t, 'crash', 1);
  const helpgate = processes[0]!;
  const { Inbox, Article } = store.models;
  const kills: string[] = [];
  // Three kills, each a random distance into its run: two while the mailbox is being read,
  // one while the backlog is being ticketed.
  const points = [
    { what: 'stored' as const, after: 20 + randomInt(40) },
    { what: 'stored' as const, after: 30 + randomInt(60) },
    { what: 'articles' as const, after: 10 + randomInt(30) },
  ];
  for (const point of points) {
    const count = () => (point.what === 'stored' ? Inbox.countDocuments({ source: 'imap' }) : Article.countDocuments({}));
    const at = (await count()) + point.after;
    await helpgate.start();
    await until(async () => (await count()) >= at, { what: `${at} ${point.what}`, timeoutMs: 4 * 60_000, intervalMs: 20 }).catch((err: Error) => {
      throw new Error(`${err.message}:\n${helpgate.output.slice(-2000)}`);
    });
    await helpgate.kill('SIGKILL');
    const seen = await assertMovedOnlyWhenStored(t, store, 'crash', mails, `after the kill at ${at} ${point.what}`);
    kills.push(`${point.what} ≥ ${at}: ${seen.processed} moved, ${seen.stored} stored`);
  }
  await helpgate.start();
  await waitUntilDone(store, relay, mails, 9 * 60_000, () => helpgate.output);
  await until(async () => (await dovecot.list('crash', 'INBOX')).length === 0, { what: 'INBOX emptied' });
  await assertMovedOnlyWhenStored(t, store, 'crash', mails, 'at the end');
  t.deepEqual(new Set((await dovecot.list('crash', 'Processed')).map((m) => m.messageId)).size, mails.length, 'each message moved once');
  await assertExactlyOnce(t, store, relay, mails, 2 * points.length);
  const items = await Inbox.find({ source: 'imap' }, { state: 1 }).lean<InboxItem[]>();
  t.deepEqual(items.filter((i) => i.state !== 'done'), []);
  t.log(`kills: ${kills.join('; ')}; inbox items ${items.length} for ${mails.length} mails (the rest stored twice around a kill and dropped by the ingest)`);
});

test.serial('two helpgate processes on one mailbox: only one reads; killing it, the other takes over and finishes with no duplicate', async (t) => {
  t.timeout(4 * 60_000);
  const mails = composeMails(80, { bodyBytes: 200 });
  await dovecot.append('pair', 'INBOX', mails.map((m) => m.raw));
  const { processes, relay, store } = await processesOn(t, 'pair', 2);
  await Promise.all(processes.map((p) => p.start()));
  const { Inbox } = store.models;
  await until(async () => (await Inbox.countDocuments({ source: 'imap' })) >= 15, { what: '15 stored', timeoutMs: 60_000, intervalMs: 20 });
  // The reader is the process whose id its stored items carry.
  const first = await Inbox.findOne({ source: 'imap' }).lean<InboxItem>();
  const reader = processes.find((p) => first!.envelope.helo!.includes(`:${p.pid}-`))!;
  const other = processes.find((p) => p !== reader)!;
  t.truthy(reader, `reader of ${first!.envelope.helo}`);
  t.is(dovecot.logins('pair'), 1, 'one IMAP session before the kill: the other process only waits');
  await reader.kill('SIGKILL');
  await waitUntilDone(store, relay, mails, 3 * 60_000, () => other.output);
  await until(async () => (await dovecot.list('pair', 'INBOX')).length === 0, { what: 'INBOX emptied' });
  await assertMovedOnlyWhenStored(t, store, 'pair', mails, 'at the end');
  await assertExactlyOnce(t, store, relay, mails, 2);
  // Stored in one run by the first reader, then only by the one that took over.
  const items = await Inbox.find({ source: 'imap' }).sort({ receivedAt: 1, _id: 1 }).lean<InboxItem[]>();
  const readers = items.map((i) => (i.envelope.helo!.includes(`:${other.pid}-`) ? 'other' : i.envelope.helo === first!.envelope.helo ? 'first' : i.envelope.helo));
  const runs = readers.filter((r, i) => i === 0 || r !== readers[i - 1]);
  t.deepEqual(runs, ['first', 'other'], 'readers in the order they stored');
  t.is(dovecot.logins('pair'), 2, 'two IMAP sessions in all: the first reader, then the one that took over');
});

test.serial('Dovecot stopped and started mid-run: the reader reconnects and finishes, each mail once', async (t) => {
  t.timeout(4 * 60_000);
  const mails = composeMails(80, { bodyBytes: 200 });
  await dovecot.append('restart', 'INBOX', mails.map((m) => m.raw));
  const h = await startTestHelpgate(t, {
    db: await database(),
    env: { HELPGATE_CONFIG: writeImapConfig(dir, dovecot, [{ user: 'restart' }]), IMAP_LEASE_SECONDS: '5', IMAP_RETRY_MAX_SECONDS: '2', IMAP_BATCH: '10', IMAP_COMMAND_TIMEOUT_SECONDS: '10' },
  });
  const { Inbox, IntakeStatus } = h.hg.store.models;
  await until(async () => (await Inbox.countDocuments({ source: 'imap' })) >= 10, { what: '10 stored', timeoutMs: 60_000, intervalMs: 20 });
  await dovecot.stop();
  const down = await until(
    async () => {
      const s = await IntakeStatus.findById('imap:help').lean<IntakeStatus>();
      return s?.state === 'reconnecting' ? s : null;
    },
    { what: 'the reader to notice', timeoutMs: 30_000 },
  );
  t.truthy(down.lastError);
  const storedWhileDown = await Inbox.countDocuments({ source: 'imap' });
  await dovecot.start();
  // Mail that arrives after the restart is read too: the reader is back, idling on the new session.
  const later = composeMails(20, { bodyBytes: 200 });
  await dovecot.append('restart', 'INBOX', later.map((m) => m.raw));
  const all = [...mails, ...later];
  await waitUntilDone(h.hg.store, h.relay, all, 3 * 60_000, () => '');
  await until(async () => (await dovecot.list('restart', 'INBOX')).length === 0, { what: 'INBOX emptied' });
  await assertMovedOnlyWhenStored(t, h.hg.store, 'restart', all, 'at the end');
  await assertExactlyOnce(t, h.hg.store, h.relay, all, 0);
  await until(async () => (await IntakeStatus.findById('imap:help').lean<IntakeStatus>())?.state === 'idle', { what: 'the reader idle again' });
  t.log(`${storedWhileDown} of ${mails.length} stored when Dovecot went down`);
  t.true(dovecot.logins('restart') >= 2, 'a new session after the restart');
});
