import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { projectRoot } from '../src/config/load.ts';
import { toBuffer } from '../src/db/blobs.ts';
import type { OutboxMail } from '../src/db/models/outbox.ts';
import { freePort } from '../src/db/embedded.ts';
import { parseMessage } from '../src/mail/parse/parse.ts';
import { WorkQueue } from '../src/db/coordination/index.ts';
import { FIRST_LINE, HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { until } from './helpers/wait.ts';

const run = promisify(execFile);
const CLI = path.join(projectRoot, 'src/cli/helpgate.mjs');
/** testEnv's OUTBOX_BACKOFF_SECONDS has three entries: a deferred mail gets 1 + 3 attempts. */
const BACKOFF_TABLE_LENGTH = 3;

function outbox(h: TestHelpgate, filter: Record<string, unknown> = {}): Promise<OutboxMail[]> {
  return h.hg.store.models.Outbox.find(filter).sort({ createdAt: 1, _id: 1 }).lean<OutboxMail[]>();
}

/** Waits until nothing is queued any more and `expected` mails exist; returns them all. */
async function outboxSettled(h: TestHelpgate, expected: number, timeoutMs = 30_000): Promise<OutboxMail[]> {
  return until(
    async () => {
      const mails = await outbox(h);
      return mails.length === expected && mails.every((m) => m.state !== 'queued') ? mails : null;
    },
    { what: `${expected} outbound mails to be settled (none queued)`, timeoutMs },
  );
}

function header(raw: Buffer, name: string): string | null {
  const head = raw.toString('utf8').split(/\r?\n\r?\n/, 1)[0]!.replace(/\r?\n[ \t]+/g, ' ');
  const line = head.split(/\r?\n/).find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line ? line.slice(name.length + 1).trim() : null;
}

test('a relay answering 4xx is retried until it accepts: one copy, same Message-ID on every attempt', async (t) => {
  const h = await startTestHelpgate(t);
  const requester = 'ada@uni.example';
  const refused: Buffer[] = [];
  h.relay.verdict = ({ rcptTo, raw }) => {
    if (!rcptTo.includes(requester) || refused.length >= 2) return null;
    refused.push(raw);
    return { code: 451, message: '4.3.0 Mailbox temporarily unavailable, try again later' };
  };
  await h.send({ from: `Ada <${requester}>`, to: HELPDESK, subject: 'Retry me', text: 'Please answer, eventually.' });

  const ack = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(requester), 'the acknowledgement after two refusals');
  t.is(refused.length, 2, 'the relay refused twice before it accepted');
  t.is(ack.parsed.subject, '[CIE#100001] Retry me');
  for (const raw of refused) {
    const first = await parseMessage(raw);
    t.is(first.messageId, ack.parsed.messageId, 'a retry is the same message, not a new one');
    t.is(header(raw, 'date'), ack.header('date'));
    t.is(first.subject, ack.parsed.subject);
  }

  const mails = await outboxSettled(h, 3);
  const ackMail = mails.find((m) => m.kind === 'ack')!;
  t.is(ackMail.state, 'sent');
  t.is(ackMail.attempts, 3);
  t.is(ack.parsed.messageId, ackMail.messageId, 'the Message-ID fixed at enqueue is the one delivered');
  t.regex(ackMail.response ?? '', /^250/);
  t.is(ackMail.lastError, null, 'the deferral is forgotten once sent');
  t.is(h.relay.to(requester).length, 1, 'exactly one copy reached the requester');
  for (const member of FIRST_LINE) t.is(h.relay.to(member).length, 1, `one notification to ${member}`);
  const ticket = await h.ticket(100001);
  t.is(ticket!.lastDeliveryFailure, null);
});

test('a relay answering 5xx fails the mail at once and records it on the ticket', async (t) => {
  const h = await startTestHelpgate(t);
  const requester = 'gone@uni.example';
  h.relay.verdict = ({ rcptTo }) => (rcptTo.includes(requester) ? { code: 550, message: '5.1.1 <gone@uni.example>: Recipient address rejected: User unknown' } : null);
  await h.send({ from: `Gone <${requester}>`, to: HELPDESK, subject: 'Nobody home', text: 'This mailbox is about to be deleted.' });

  const mails = await outboxSettled(h, 3);
  const ackMail = mails.find((m) => m.kind === 'ack')!;
  t.is(ackMail.state, 'failed');
  t.is(ackMail.attempts, 1, 'a permanent refusal is not retried');
  t.regex(ackMail.lastError ?? '', /550/);
  t.regex(ackMail.lastError ?? '', /5\.1\.1/);
  t.is(h.relay.to(requester).length, 0);

  const ticket = await until(
    async () => {
      const found = await h.ticket(100001);
      return found?.lastDeliveryFailure ? found : null;
    },
    { what: 'the failure recorded on the ticket' },
  );
  t.deepEqual(ticket.lastDeliveryFailure!.to, [requester]);
  t.regex(ticket.lastDeliveryFailure!.error, /5\.1\.1/);
  t.is(String(ticket.lastDeliveryFailure!.outboxId), String(ackMail._id));
  const articles = await until(async () => {
    const all = await h.articles(100001);
    return all.some((a) => a.direction === 'system') ? all : null;
  }, { what: 'the delivery failure article' });
  const failure = articles.find((a) => a.direction === 'system')!;
  t.is(failure.subject, 'Delivery failed: [CIE#100001] Nobody home');
  t.true(failure.text.includes(requester));
  t.regex(failure.text, /5\.1\.1/);

  // The unit still hears about the ticket.
  for (const member of FIRST_LINE) {
    const n = h.relay.to(member);
    t.is(n.length, 1, `one notification to ${member}`);
    t.is(n[0]!.parsed.subject, '[CIE#100001] Nobody home');
  }
  t.deepEqual(
    mails.filter((m) => m.kind === 'notify-new').map((m) => m.state),
    ['sent', 'sent'],
  );
});

test('an unreachable relay is retried through the backoff table, then the mail fails and the ticket says so', async (t) => {
  const closedPort = await freePort();
  const h = await startTestHelpgate(t, { env: { OUTBOUND_SMTP_URL: `smtp://127.0.0.1:${closedPort}` } });
  await h.send({ from: 'Bob <bob@uni.example>', to: HELPDESK, subject: 'Relay down', text: 'Is anyone there?' });

  const mails = await outboxSettled(h, 3, 60_000);
  for (const mail of mails) {
    t.is(mail.state, 'failed', `${mail.kind} to ${mail.to} failed`);
    t.is(mail.attempts, BACKOFF_TABLE_LENGTH + 1, 'connection errors are deferrals: retried until the table runs out');
    t.regex(mail.lastError ?? '', new RegExp(`^gave up after ${BACKOFF_TABLE_LENGTH + 1} attempts: `));
    t.regex(mail.lastError ?? '', /ECONNREFUSED|connect/i);
  }
  t.is(h.relay.mails.length, 0);

  const articles = await until(async () => {
    const all = await h.articles(100001);
    return all.filter((a) => a.direction === 'system').length === 3 ? all : null;
  }, { what: 'three delivery failure articles' });
  const failedTo = articles.filter((a) => a.direction === 'system').map((a) => a.text);
  for (const address of ['bob@uni.example', ...FIRST_LINE]) t.true(failedTo.some((text) => text.includes(address)), `failure to ${address} recorded`);
  const ticket = await h.ticket(100001);
  t.truthy(ticket!.lastDeliveryFailure);
  t.regex(ticket!.lastDeliveryFailure!.error, /gave up after 4 attempts/);
});

test('without a relay, mail is captured with its MIME and the CLI lists and shows it', async (t) => {
  // loadConfig treats an empty variable as unset: this helpgate has no relay.
  const h = await startTestHelpgate(t, { env: { OUTBOUND_SMTP_URL: '' } });
  t.is(h.config.outboundSmtpUrl, undefined);
  await h.send({ from: 'Cleo <cleo@uni.example>', to: HELPDESK, subject: 'No relay here', text: 'Where does the answer go?' });

  const mails = await outboxSettled(h, 3);
  for (const mail of mails) {
    t.is(mail.state, 'captured');
    t.true(mail.raw !== null && toBuffer(mail.raw).length > 0, 'the raw MIME is stored');
  }
  t.is(h.relay.mails.length, 0);
  const ackMail = mails.find((m) => m.kind === 'ack')!;

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-cli-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const uri = new URL(h.db.uri);
  uri.pathname = `/${h.db.dbName}`;
  const env = { ...process.env, MONGODB_URI: uri.toString(), HELPGATE_DATA_DIR: dataDir, LOG_LEVEL: 'silent' };
  const cli = (...args: string[]) => run(process.execPath, [CLI, ...args], { env, cwd: projectRoot, timeout: 60_000 });

  const list = JSON.parse((await cli('outbox', '--json')).stdout) as Array<{ _id: string; state: string; kind: string; to: string[]; subject: string; raw?: unknown }>;
  t.is(list.length, 3);
  const listed = list.find((m) => m._id === String(ackMail._id));
  t.truthy(listed, 'the acknowledgement is listed');
  t.is(listed!.state, 'captured');
  t.deepEqual(listed!.to, ['cleo@uni.example']);
  t.is(listed!.subject, '[CIE#100001] No relay here');
  t.false('raw' in listed!, 'the list leaves the MIME out');

  // --raw: the MIME source as it would have been sent (without it, `show` prints the mail decoded; see cli.test.ts).
  const shown = (await cli('outbox', 'show', String(ackMail._id), '--raw')).stdout;
  t.is(header(Buffer.from(shown), 'subject'), '[CIE#100001] No relay here');
  t.is(header(Buffer.from(shown), 'auto-submitted'), 'auto-replied');
  t.is(header(Buffer.from(shown), 'message-id'), ackMail.messageId);
  const parsed = await parseMessage(Buffer.from(shown));
  t.deepEqual(parsed.to.map((a) => a.address), ['cleo@uni.example']);
  t.true(parsed.text.includes('http://localhost:3000/tickets/100001'));
});

test('two helpgates on one database deliver every mail exactly once and number tickets without gaps', async (t) => {
  // 30 tickets and 90 mails through two pipelines on one embedded database: more than the
  // default 120 s on a busy 2-core machine.
  t.timeout(300_000);
  const a = await startTestHelpgate(t);
  const b = await startTestHelpgate(t, { db: a.db, relay: a.relay });
  t.not(a.hg.smtp.port, b.hg.smtp.port);
  const count = 30;
  const sent = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      (i % 2 ? b : a).send({ from: `User ${i} <user${i}@uni.example>`, to: HELPDESK, subject: `Question ${i}`, text: `Question number ${i}.` }),
    ),
  );
  t.true(sent.every((s) => s.response.startsWith('250')));

  const expected = count * (1 + FIRST_LINE.length);
  await until(() => a.relay.mails.length >= expected, { what: `${expected} mails at the relay`, timeoutMs: 180_000 });
  await outboxSettled(a, expected, 30_000);

  const tickets = await a.tickets();
  t.deepEqual(
    tickets.map((x) => x.number),
    Array.from({ length: count }, (_, i) => 100001 + i),
    'ticket numbers are unique and contiguous',
  );
  t.is(new Set(tickets.map((x) => x.requester.address)).size, count, 'one ticket per mail');

  const ids = a.relay.mails.map((m) => m.parsed.messageId);
  t.is(new Set(ids).size, ids.length, 'no Message-ID reached the relay twice');
  t.is(a.relay.mails.length, expected, 'nothing more than one ack and one notification per member per ticket');
  for (const ticket of tickets) {
    const tag = `[CIE#${ticket.number}]`;
    const about = a.relay.mails.filter((m) => m.parsed.subject.startsWith(tag));
    t.deepEqual(
      about.map((m) => m.envelope.rcptTo.join(',')).sort(),
      [ticket.requester.address, ...FIRST_LINE].sort(),
      `${tag}: one ack and one notification per member`,
    );
  }
  const states = await outbox(a);
  t.true(states.every((m) => m.state === 'sent'));
});

test('a send that outlasts the lease is not taken over by another worker: the mail reaches the relay once', async (t) => {
  const LEASE_SECONDS = 3;
  const h = await startTestHelpgate(t, { env: { OUTBOX_LEASE_SECONDS: String(LEASE_SECONDS) } });
  const requester = 'slow-relay@uni.example';
  let held = false;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  h.relay.hold = async ({ rcptTo }) => {
    if (!rcptTo.includes(requester) || held) return;
    held = true;
    await released;
  };
  await h.send({ from: requester, to: HELPDESK, subject: 'Slow relay', text: 'The relay takes its time.' });
  await until(() => held, { what: 'the relay to hold the acknowledgement', timeoutMs: 30_000 });
  const { Outbox, OutboxQueue } = h.hg.store.models;
  const ack = await Outbox.findOne({ to: requester }).lean<OutboxMail>();
  const claim = await OutboxQueue.findOne({ entry: ack!._id }).lean<{ expiresAt: Date }>();
  // Past the lease the claim had when the send began, another worker looks for due mail.
  const lapsedAt = new Date(claim!.expiresAt).getTime() + 500;
  await until(() => Date.now() > lapsedAt, { what: 'the first lease to pass', timeoutMs: 4 * LEASE_SECONDS * 1000 });
  const other = new WorkQueue<OutboxMail>({ items: Outbox, queue: OutboxQueue, leaseMs: LEASE_SECONDS * 1000, owner: 'other-process', isClaimable: (d) => d.state === 'queued' });
  const taken = await other.claim(50, new Date());
  other.forget(taken.map((c) => c.doc._id));
  t.deepEqual(taken.filter((c) => String(c.doc._id) === String(ack!._id)), [], 'the acknowledgement is still claimed by the worker sending it');
  release();
  await until(async () => (await Outbox.findById(ack!._id).lean<OutboxMail>())?.state === 'sent', { what: 'the acknowledgement sent', timeoutMs: 30_000 });
  t.is(h.relay.to(requester).length, 1, 'one copy at the relay');
  t.is((await Outbox.findById(ack!._id).lean<OutboxMail>())?.attempts, 1);
});
