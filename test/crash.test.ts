import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { Article } from '../src/db/models/article.ts';
import type { Ticket } from '../src/db/models/ticket.ts';
import { openStore } from '../src/db/store.ts';
import { CaptureSmtp } from './helpers/capture-smtp.ts';
import { startTestDatabase, uniqueDbName } from './helpers/database.ts';
import { HELPDESK, smtpClient } from './helpers/helpgate.ts';
import { HelpgateProcess } from './helpers/helpgate-process.ts';
import { until } from './helpers/wait.ts';

const MAILS = Number(process.env.CRASH_TEST_MAILS ?? 200);
const SENDERS_IN_PARALLEL = 8;
const TEST_BUDGET_MS = 6 * 60_000;
/** How many times the sender tries a mail after the restart before the test gives up. */
const MAX_RETRIES = 5;

interface OutgoingMail {
  index: number;
  from: string;
  messageId: string;
  envelope: { from: string; to: string[] };
  raw: string;
}

function composeMails(): OutgoingMail[] {
  const run = randomBytes(4).toString('hex');
  return Array.from({ length: MAILS }, (_, index) => {
    // One sender per mail: each opens its own ticket, and no acknowledgement rate limit applies.
    const from = `requester-${index}@crash.example`;
    const messageId = `<crash-${run}-${index}@crash.example>`;
    const raw = [
      `From: Requester ${index} <${from}>`,
      `To: ${HELPDESK}`,
      `Subject: Crash run request ${index}`,
      `Message-ID: ${messageId}`,
      'Date: Mon, 02 Jun 2025 10:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      `Request number ${index}. ${'Some detail. '.repeat(20)}`,
      '',
    ].join('\r\n');
    return { index, from, messageId, envelope: { from, to: [HELPDESK] }, raw };
  });
}

test('helpgate killed with SIGKILL mid-run and restarted: every mail is one article, one ticket, one acknowledgement', async (t) => {
  t.timeout(TEST_BUDGET_MS);
  const deadline = Date.now() + TEST_BUDGET_MS - 20_000; // leaves time for the assertions and teardown
  const db = await startTestDatabase({ own: true });
  t.teardown(() => db.cleanup());
  const relay = await new CaptureSmtp().listen();
  t.teardown(() => relay.close());
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-crash-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  // One Support Unit without members: the run is about requesters' mail and acknowledgements,
  // and leaving out the unit's notifications keeps the outbox to one mail per ticket.
  const units = path.join(dataDir, 'units.yaml');
  writeFileSync(units, 'units:\n  - key: first-line\n    name: First Line Support\n    address: first-line@helpdesk.localhost\n    entry: true\n    members: []\n');
  const dbName = uniqueDbName('crash');
  const uri = new URL(db.uri);
  uri.pathname = `/${dbName}`;

  const helpgate = new HelpgateProcess({
    ...process.env,
    MONGODB_URI: uri.toString(),
    MONGODB_TIMEOUT_MS: '2000',
    HELPGATE_CONFIG: units,
    HELPGATE_DATA_DIR: dataDir,
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: '0',
    HTTP_PORT: '0',
    DEV_AAI_PORT: '0',
    UNBOUND_SENDERS: 'accept',
    OUTBOUND_SMTP_URL: relay.url,
    // Short ingest leases: the restarted helpgate takes over the killed one's items within
    // seconds, and a live worker whose lease lapses under load has its item processed twice,
    // which must be harmless too.
    INGEST_LEASE_SECONDS: '2',
    // Not as short for the outbox: a live worker whose lease lapses while it is still sending
    // sends that mail twice (seen with 2 s on a loaded machine, an acknowledgement sent twice
    // by one process long after the kill). That is about the lease length, not about surviving
    // a crash, so the lease is one a live worker keeps; the killed worker's mails are sent once
    // it has run out.
    OUTBOX_LEASE_SECONDS: '20',
    OUTBOX_BACKOFF_SECONDS: '1,1,1,1,1',
    LOG_LEVEL: 'warn',
  });
  t.teardown(() => helpgate.kill('SIGKILL'));

  const mails = composeMails();
  const acknowledged = new Set<number>();
  /** Final SMTP answers other than 250, by mail: what the sender saw. */
  const failures = new Map<number, string[]>();
  const noteFailure = (mail: OutgoingMail, err: unknown) => {
    const e = err as { response?: string; message?: string };
    failures.set(mail.index, [...(failures.get(mail.index) ?? []), e.response ?? e.message ?? String(err)]);
  };

  // First run: several senders in parallel; SIGKILL once enough mails have been acknowledged,
  // while the other senders are in the middle of their transactions.
  const killAfter = Math.round(MAILS * (0.3 + randomInt(21) / 100));
  let port = await helpgate.start();
  let client = smtpClient(port);
  let killed: Promise<void> | null = null;
  const queue = [...mails];
  const firstRun = async () => {
    while (!killed && queue.length) {
      const mail = queue.shift()!;
      try {
        const info = await client.sendMail({ envelope: mail.envelope, raw: mail.raw });
        if (/^250 /.test(info.response)) acknowledged.add(mail.index);
        else noteFailure(mail, info);
      } catch (err) {
        noteFailure(mail, err);
      }
      if (!killed && acknowledged.size >= killAfter) killed = helpgate.kill('SIGKILL');
    }
  };
  await Promise.all(Array.from({ length: SENDERS_IN_PARALLEL }, firstRun));
  await killed;
  client.close();
  const acknowledgedBeforeKill = acknowledged.size;
  const diedInFlight = [...failures.keys()].length;
  t.true(acknowledgedBeforeKill >= killAfter && acknowledgedBeforeKill < MAILS, `acknowledged before the kill: ${acknowledgedBeforeKill}`);

  // Second run: the sender retries everything that did not get a 250, as a mail server would.
  port = await helpgate.start();
  client = smtpClient(port);
  t.teardown(() => client.close());
  const retry = mails.filter((m) => !acknowledged.has(m.index));
  const secondRun = async () => {
    for (;;) {
      const mail = retry.shift();
      if (!mail) return;
      for (let attempt = 1; ; attempt++) {
        try {
          const info = await client.sendMail({ envelope: mail.envelope, raw: mail.raw });
          if (/^250 /.test(info.response)) {
            acknowledged.add(mail.index);
            break;
          }
          noteFailure(mail, info);
        } catch (err) {
          noteFailure(mail, err);
        }
        if (attempt >= MAX_RETRIES) throw new Error(`mail ${mail.index} was refused ${attempt} times after the restart: ${failures.get(mail.index)!.join(' | ')}`);
      }
    }
  };
  await Promise.all(Array.from({ length: SENDERS_IN_PARALLEL }, secondRun));
  t.is(acknowledged.size, MAILS);

  // Wait until every stored mail is processed and every queued mail has reached the relay.
  const store = await openStore(uri.toString(), { timeoutMs: 5000 });
  t.teardown(() => store.close());
  const { Inbox, Ticket, Article, Outbox } = store.models;
  const isAck = (m: { header(name: string): string | null }) => m.header('auto-submitted') === 'auto-replied';
  const progress = async () => {
    const byState = async (model: typeof Inbox | typeof Outbox) =>
      JSON.stringify(Object.fromEntries((await model.aggregate<{ _id: string; n: number }>([{ $group: { _id: '$state', n: { $sum: 1 } } }])).map((g) => [g._id, g.n])));
    return `inbox ${await byState(Inbox)}, outbox ${await byState(Outbox)}, tickets ${await Ticket.countDocuments()}, acknowledgements at the relay ${relay.mails.filter(isAck).length}`;
  };
  await until(
    async () =>
      (await Inbox.countDocuments({ state: 'pending' })) === 0 &&
      (await Outbox.countDocuments({ state: 'queued' })) === 0 &&
      new Set(relay.mails.filter(isAck).map((m) => m.parsed.inReplyTo)).size >= MAILS,
    { what: `all ${MAILS} mails processed and acknowledged`, timeoutMs: deadline - Date.now(), intervalMs: 250 },
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}; ${await progress()}; helpgate output:\n${helpgate.output.slice(-1500)}`);
  });

  const inbox = await Inbox.find({}).lean<{ state: string; lastError: string | null }[]>();
  t.deepEqual(
    inbox.filter((i) => i.state !== 'done'),
    [],
    'every stored message was processed',
  );

  // One ticket per mail, numbered from 100001 without a gap or a repeat.
  const tickets = await Ticket.find({}).sort({ number: 1 }).lean<Ticket[]>();
  t.deepEqual(
    tickets.map((x) => x.number),
    Array.from({ length: MAILS }, (_, i) => 100001 + i),
  );
  t.deepEqual(tickets.map((x) => x.requester.address).sort(), mails.map((m) => m.from).sort());

  // Exactly one article per Message-ID, on the ticket of its sender.
  const articles = await Article.find({}).lean<Article[]>();
  t.is(articles.length, MAILS);
  const ticketOf = new Map(tickets.map((x) => [String(x._id), x]));
  for (const mail of mails) {
    const mine = articles.filter((a) => a.messageId === mail.messageId);
    t.is(mine.length, 1, `articles for mail ${mail.index}`);
    t.is(ticketOf.get(String(mine[0]?.ticketId))?.requester.address, mail.from, `ticket of mail ${mail.index}`);
  }

  // Exactly one acknowledgement per mail, to its sender. A mail the relay had accepted when
  // helpgate was killed, before helpgate could record it as sent, is sent again after the
  // restart: the same message (same Message-ID), as SMTP's at-least-once delivery allows. Only
  // the mails in flight at the kill can repeat: the outbox's two lanes each claim at most three
  // mails (src/mail/send/worker.ts) and settle each as it is sent, so at most six are ever sent
  // and not yet recorded.
  const acks = relay.mails.filter(isAck);
  const resent: string[] = [];
  for (const mail of mails) {
    const mine = acks.filter((m) => m.parsed.inReplyTo === mail.messageId);
    const ids = new Set(mine.map((m) => m.parsed.messageId));
    t.is(ids.size, 1, `distinct acknowledgements of mail ${mail.index}`);
    t.deepEqual([...new Set(mine.map((m) => m.envelope.rcptTo.join(',')))], [mail.from]);
    if (mine.length > 1) resent.push(`${mail.index}×${mine.length}`);
  }
  t.is(new Set(acks.map((m) => m.parsed.inReplyTo)).size, MAILS, 'no acknowledgement of anything else');
  const copies = new Map<string, number>();
  for (const m of relay.mails) copies.set(m.parsed.messageId ?? '', (copies.get(m.parsed.messageId ?? '') ?? 0) + 1);
  const repeated = [...copies.values()].filter((n) => n > 1).reduce((sum, n) => sum + n - 1, 0);
  t.true(repeated <= 6, `mails the relay received more than once: ${repeated}`);

  t.log(
    `killed after ${acknowledgedBeforeKill} acknowledged (threshold ${killAfter}); ${diedInFlight} transactions died with it; ` +
      `${inbox.length - MAILS} mails stored twice (250 lost in the kill); acknowledgements resent: ${resent.join(', ') || 'none'}; ` +
      `relay received ${relay.mails.length} mails, ${repeated} repeated`,
  );
});
