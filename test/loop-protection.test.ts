import { createHash } from 'node:crypto';
import test from 'ava';
import type { Article } from '../src/db/models/article.ts';
import type { InboxItem } from '../src/db/models/inbox.ts';
import type { OutboxMail } from '../src/db/models/outbox.ts';
import type { Ticket } from '../src/db/models/ticket.ts';
import type { CapturedMail } from './helpers/capture-smtp.ts';
import { databasePerTest } from './helpers/database-per-test.ts';
import { FIRST_LINE, HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { fixture, quiet } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';

const database = databasePerTest(test);

// The cases share one helpgate: each fixture has its own sender and Message-ID.
let h: TestHelpgate;
test.before(async () => {
  h = await startTestHelpgate(null, { db: await database() });
});
test.after.always(async () => {
  await h?.stop();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function ackTo(hg: TestHelpgate, address: string, what = `the acknowledgement to ${address}`): Promise<CapturedMail> {
  return hg.relay.waitFor((m) => m.envelope.rcptTo.includes(address) && m.header('auto-submitted') === 'auto-replied', what, 120_000);
}

/** The inbox item of these exact bytes once it is no longer pending. */
function processedItem(hg: TestHelpgate, raw: Buffer): Promise<InboxItem> {
  return until(() => hg.hg.store.models.Inbox.findOne({ rawSha256: sha256(raw), state: { $ne: 'pending' } }).lean<InboxItem>(), { what: 'the automated mail to be processed', timeoutMs: 120_000 });
}

/**
 * Sends an ordinary mail and waits for its acknowledgement: proof that helpgate answers
 * people at all while the mail under test got no answer. Ingest does not strictly follow
 * arrival order (several lanes, a random pick among the first due items), so callers then
 * also wait for the mail under test to be processed. Every mail an ingest causes is queued
 * before its inbox item is marked processed, so from then on the outbox holds all of it.
 */
async function controlMail(id: string): Promise<void> {
  const from = `control-${id}@uni-control.example`;
  await h.send({ from, to: HELPDESK, subject: `Control for ${id}`, text: 'An ordinary question.' });
  await ackTo(h, from, `the acknowledgement of the control mail for ${id}`);
}

/** Everything the relay received that answers or reports on this ticket or this mail. */
function mailCausedBy(hg: TestHelpgate, ticket: Ticket, sender: string, messageId: string | null): CapturedMail[] {
  const tag = `[CIE#${ticket.number}]`;
  return hg.relay.mails.filter(
    (m) => m.envelope.rcptTo.includes(sender) || m.parsed.subject.includes(tag) || (messageId !== null && (m.parsed.inReplyTo === messageId || m.parsed.references.includes(messageId))),
  );
}

interface AutomatedCase {
  title: string;
  fixture: string;
  /** Envelope sender; false is the null reverse-path (MAIL FROM:<>). */
  mailFrom: string | false;
  sender: string;
  reason: RegExp;
}

const automatedCases: AutomatedCase[] = [
  { title: 'a null reverse-path (MAIL FROM:<>)', fixture: 'null-reverse-path-plain-mail.eml', mailFrom: false, sender: 'vera@uni-loop.example', reason: /null reverse-path/ },
  { title: 'Auto-Submitted: auto-replied', fixture: 'auto-submitted-auto-replied.eml', mailFrom: 'vince@uni-loop.example', sender: 'vince@uni-loop.example', reason: /^Auto-Submitted: auto-replied$/ },
  {
    title: 'Auto-Submitted: auto-generated',
    fixture: 'auto-submitted-auto-generated.eml',
    mailFrom: 'pacs-monitor@hospital-loop.example',
    sender: 'pacs-monitor@hospital-loop.example',
    reason: /^Auto-Submitted: auto-generated$/,
  },
  { title: 'Precedence: bulk', fixture: 'precedence-bulk.eml', mailFrom: 'news@vendor-loop.example', sender: 'news@vendor-loop.example', reason: /^Precedence: bulk$/ },
  { title: 'Precedence: junk', fixture: 'precedence-junk.eml', mailFrom: 'news@vendor-loop.example', sender: 'news@vendor-loop.example', reason: /^Precedence: junk$/ },
  { title: 'Precedence: list', fixture: 'precedence-list.eml', mailFrom: 'news@vendor-loop.example', sender: 'news@vendor-loop.example', reason: /^Precedence: list$/ },
  { title: 'a List-Id header', fixture: 'list-id-mailing-list-post.eml', mailFrom: 'imaging-users-bounces@lists.uni-loop.example', sender: 'ray@uni-loop.example', reason: /List-Id/ },
  { title: 'a List-Unsubscribe header', fixture: 'list-unsubscribe-newsletter.eml', mailFrom: 'weekly@newsletter-loop.example', sender: 'weekly@newsletter-loop.example', reason: /List-Unsubscribe/ },
  {
    title: 'X-Auto-Response-Suppress: All',
    fixture: 'x-auto-response-suppress-all.eml',
    mailFrom: 'rules@hospital-loop.example',
    sender: 'rules@hospital-loop.example',
    reason: /X-Auto-Response-Suppress/,
  },
  ...['mailer-daemon', 'postmaster', 'noreply', 'no-reply'].map((local) => ({
    title: `the sender ${local}@`,
    fixture: `sender-${local}.eml`,
    mailFrom: `${local}@mx-loop.example`,
    sender: `${local}@mx-loop.example`,
    reason: new RegExp(`automated sender ${local}@mx-loop\\.example`),
  })),
  { title: `our loop header X-Helpgate-Loop: ${HELPDESK}`, fixture: 'helpgate-loop-header.eml', mailFrom: 'forwarder@uni-loop.example', sender: 'forwarder@uni-loop.example', reason: /our own loop header/ },
];

let automatedDeliveries: Promise<Map<string, { raw: Buffer; response: string }>> | null = null;

/**
 * Sends every automated case's mail, then one ordinary control mail, and waits for the
 * control's acknowledgement (once, for all cases).
 */
function deliverAutomatedCases(): Promise<Map<string, { raw: Buffer; response: string }>> {
  automatedDeliveries ??= (async () => {
    const sent = new Map<string, { raw: Buffer; response: string }>();
    for (const c of automatedCases) {
      const raw = fixture(c.fixture);
      const { response } = await h.send({ envelope: { from: c.mailFrom, to: [HELPDESK] }, raw });
      sent.set(c.fixture, { raw, response });
    }
    await controlMail('automated-cases');
    return sent;
  })();
  return automatedDeliveries;
}

for (const c of automatedCases) {
  test(`mail with ${c.title} is stored and ticketed but gets no acknowledgement and no notification`, async (t) => {
    const { raw, response } = (await deliverAutomatedCases()).get(c.fixture)!;
    t.regex(response, /^250 /);

    const item = await processedItem(h, raw);
    t.is(item.state, 'done', item.lastError ?? '');
    t.is(item.envelope.mailFrom, c.mailFrom === false ? '' : c.mailFrom);
    t.regex(item.note ?? '', /^no automatic answer: /);
    const { Article, Ticket, Outbox } = h.hg.store.models;
    const article = (await Article.findById(item.articleId).lean<Article>())!;
    t.truthy(article, 'the mail is kept as an article');
    t.regex(article.automated ?? '', c.reason);
    const ticket = (await Ticket.findOne({ number: item.ticketNumber }).lean<Ticket>())!;
    t.is(ticket.requester.address, c.sender);

    t.deepEqual(await Outbox.find({ $or: [{ articleId: article._id }, { ticketNumber: ticket.number }] }).lean<OutboxMail[]>(), [], 'nothing queued for it');
    t.deepEqual(
      mailCausedBy(h, ticket, c.sender, article.messageId).map((m) => `${m.envelope.rcptTo.join(',')}: ${m.parsed.subject}`),
      [],
      'no mail reached the relay for it',
    );
  });
}

test('mail with Auto-Submitted: no is a person writing: it is acknowledged and First Line is told', async (t) => {
  const raw = fixture('auto-submitted-no.eml');
  await h.send({ envelope: { from: 'nora@uni-loop.example', to: [HELPDESK] }, raw });
  const ack = await ackTo(h, 'nora@uni-loop.example');
  t.regex(ack.parsed.subject, /^\[CIE#\d+\] Question about the data use agreement$/);
  t.is(ack.parsed.inReplyTo, '<auto-submitted-no.1@uni-loop.example>');
  for (const member of FIRST_LINE) {
    await h.relay.waitFor((m) => m.envelope.rcptTo.includes(member) && m.parsed.subject === ack.parsed.subject, `the notification to ${member}`, 120_000);
  }
  const item = await processedItem(h, raw);
  const article = (await h.hg.store.models.Article.findById(item.articleId).lean<Article>())!;
  t.is(article.automated, null);
});

test('our own acknowledgement sent back to help@ is ignored: no article, no ticket, no mail', async (t) => {
  const requester = 'olga@uni-loop.example';
  await h.send({ from: requester, to: HELPDESK, subject: 'Where is my export?', text: 'The export never arrived.' });
  const ack = await ackTo(h, requester);
  const ourMessageId = ack.parsed.messageId!;
  t.regex(ourMessageId, /@helpdesk\.localhost>$/);
  const original = (await h.hg.store.models.Ticket.findOne({ 'requester.address': requester }).lean<Ticket>())!;
  const tag = `[CIE#${original.number}]`;
  await until(() => h.relay.mails.filter((m) => m.parsed.subject.includes(tag)).length === 3, { what: 'the acknowledgement and both notifications', timeoutMs: 120_000 });
  const relayedBefore = h.relay.mails.length;

  // An alias that forwards everything, our acknowledgement included, back to the helpdesk.
  const forwarder = 'alias-forward@uni-loop.example';
  const sent = await h.send({ envelope: { from: forwarder, to: [HELPDESK] }, raw: ack.raw });
  t.regex(sent.response, /^250 /);
  await controlMail('own-message-id');

  const item = await processedItem(h, ack.raw);
  t.is(item.state, 'ignored');
  t.regex(item.note ?? '', /our own message .* came back/);
  t.is(item.articleId, null);
  t.is(item.ticketNumber, null);
  const { Article, Ticket, Outbox } = h.hg.store.models;
  t.is(await Article.countDocuments({ messageId: ourMessageId }), 0, 'no article for our own mail');
  t.is(await Article.countDocuments({ ticketId: original._id }), 1, 'the original ticket has only the request');
  t.is(await Ticket.countDocuments({ 'requester.address': { $in: [requester, forwarder, HELPDESK] } }), 1, 'no new ticket');
  t.is(await Outbox.countDocuments({ $or: [{ ticketNumber: original.number }, { to: forwarder }, { inReplyTo: ourMessageId }] }), 3, 'the outbox holds only the first acknowledgement and notifications');
  t.deepEqual(
    h.relay.mails
      .slice(relayedBefore)
      .filter((m) => m.parsed.subject.includes(tag) || m.envelope.rcptTo.some((r) => r === requester || r === forwarder) || m.parsed.inReplyTo === ourMessageId)
      .map((m) => `${m.envelope.rcptTo.join(',')}: ${m.parsed.subject}`),
    [],
    'nothing was sent because of it',
  );
});

test('acknowledgements are rate-limited per sender, notifications are not', async (t) => {
  // The limit counts per clock hour; run helpgate's clock a minute past an hour so that all
  // five mails fall into one window whenever the test runs.
  const hour = 3600_000;
  const offset = (hour - (Date.now() % hour) + 60_000) % hour;
  const hg = await startTestHelpgate(t, { db: await database(), env: { ACK_RATE_LIMIT_PER_HOUR: '3' }, now: () => new Date(Date.now() + offset) });
  const sender = 'eager@uni-loop.example';
  // All at once, each on its own connection: the limit must hold while they are ingested in parallel.
  const sent = await Promise.all([1, 2, 3, 4, 5].map((i) => hg.send({ from: sender, to: HELPDESK, subject: `Request number ${i}`, text: `This is request ${i}.` })));
  for (const s of sent) t.regex(s.response, /^250 /);
  await until(async () => (await hg.inbox()).filter((i) => i.state === 'done').length === 5, { what: 'all five mails to be processed', timeoutMs: 120_000 });
  await quiet(hg);
  const tickets = await hg.tickets();
  t.deepEqual(
    tickets.map((x) => x.subject).sort(),
    [1, 2, 3, 4, 5].map((i) => `Request number ${i}`),
  );
  t.is(hg.relay.to(sender).length, 3, 'three acknowledgements');
  for (const member of FIRST_LINE) t.is(hg.relay.to(member).length, 5, `five notifications to ${member}`);
});
