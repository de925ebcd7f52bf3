import { createHash } from 'node:crypto';
import test from 'ava';
import type { Article } from '../src/db/models/article.ts';
import type { InboxItem } from '../src/db/models/inbox.ts';
import type { Ticket } from '../src/db/models/ticket.ts';
import type { CapturedMail } from './helpers/capture-smtp.ts';
import { FIRST_LINE, HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { fixture } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';

// Every fixture here is delivered over real SMTP, byte for byte (nodemailer `raw`), into one
// helpgate. Each fixture has a sender of its own, so its tickets and mails are told apart and
// no sender comes near the acknowledgement rate limit.
let h: TestHelpgate;
test.before(async () => {
  h = await startTestHelpgate(null);
});
test.after.always(async () => {
  await h?.stop();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface Filed {
  raw: Buffer;
  item: InboxItem;
  article: Article;
  ticket: Ticket;
}

/** Delivers a fixture to help@ over SMTP and waits until helpgate has filed it. */
async function deliver(name: string, mailFrom: string): Promise<Filed> {
  const raw = fixture(name);
  const sent = await h.send({ envelope: { from: mailFrom, to: [HELPDESK] }, raw });
  if (!/^250 /.test(sent.response)) throw new Error(`${name} was refused: ${sent.response}`);
  return filed(raw);
}

/** The inbox item of these exact bytes, once processed, with its article and ticket. */
async function filed(raw: Buffer): Promise<Filed> {
  const { Inbox, Article, Ticket } = h.hg.store.models;
  const rawSha256 = sha256(raw);
  const item = await until(() => Inbox.findOne({ rawSha256, state: { $ne: 'pending' } }).lean<InboxItem>(), { what: `the inbox item ${rawSha256}`, timeoutMs: 120_000 });
  if (item.state !== 'done') throw new Error(`inbox item is ${item.state}: ${item.lastError ?? item.note}`);
  const article = (await Article.findById(item.articleId).lean<Article>())!;
  const ticket = (await Ticket.findOne({ number: article.ticketNumber }).lean<Ticket>())!;
  return { raw, item, article, ticket };
}

function ackOf(ticket: Ticket): Promise<CapturedMail> {
  const to = ticket.requester.address;
  const tag = `[CIE#${ticket.number}]`;
  return h.relay.waitFor((m) => m.envelope.rcptTo.includes(to) && m.header('auto-submitted') === 'auto-replied' && m.parsed.subject.startsWith(tag), `the acknowledgement of ${tag}`, 120_000);
}

function notificationOf(ticket: Ticket, member = FIRST_LINE[0]!): Promise<CapturedMail> {
  const tag = `[CIE#${ticket.number}]`;
  return h.relay.waitFor((m) => m.envelope.rcptTo.includes(member) && m.parsed.subject.startsWith(tag), `the notification of ${tag} to ${member}`, 120_000);
}

test('a multipart mail without its closing boundary still becomes a ticket with its text and its attachment', async (t) => {
  const { ticket, article } = await deliver('multipart-missing-closing-boundary.eml', 'ines@uni-malformed.example');
  t.is(ticket.subject, 'Upload stops after the first study');
  t.is(ticket.requester.address, 'ines@uni-malformed.example');
  t.is(article.text, 'The upload stops after the first study.\nSeries 2 to 14 never arrive.\n');
  // The unterminated last part is kept too: its bytes run to the end of the message.
  t.deepEqual(
    article.attachments.map((a) => [a.filename, a.size]),
    [['upload.log', 45]],
  );
  const log = await h.hg.store.blobs.get(article.attachments[0]!.sha256);
  t.is(log?.toString('utf8'), '12:00:01 study 1 ok\n12:00:02 study 2 timeout\n');
  const ack = await ackOf(ticket);
  t.is(ack.parsed.subject, `[CIE#${ticket.number}] Upload stops after the first study`);
  t.true((await notificationOf(ticket)).parsed.text.includes('Series 2 to 14 never arrive.'));
});

test('a body with an unknown Content-Transfer-Encoding is read as it came (UTF-8 text stays readable)', async (t) => {
  const { ticket, article } = await deliver('unknown-content-transfer-encoding.eml', 'jan@uni-malformed.example');
  t.is(ticket.subject, 'Viewer shows no series');
  t.is(article.text, 'The viewer shows “no series” for study 42.\nGrüße aus Köln\n');
  t.true((await notificationOf(ticket)).parsed.text.includes('Grüße aus Köln'));
  t.is((await ackOf(ticket)).parsed.subject, `[CIE#${ticket.number}] Viewer shows no series`);
});

test('a subject with broken encoded-words keeps every readable word and the mail becomes a ticket', async (t) => {
  const { ticket, article } = await deliver('invalid-encoded-word-subject.eml', 'kai@uni-malformed.example');
  // B-word with stray "!!" → decoded around them; a Q-word never terminated → kept literally.
  const subject = 'Password reset fails for the =portal and =?utf-8?Q?unterminated';
  t.is(ticket.subject, subject);
  t.is(article.subject, subject);
  t.is(article.from?.name, 'Kai Müller');
  t.is(article.text, 'The password reset link on the portal says it has expired.\n');
  t.is((await ackOf(ticket)).parsed.subject, `[CIE#${ticket.number}] ${subject}`);
});

test('an HTML-only mail gets its article text from the HTML, and the HTML is stored as received', async (t) => {
  const { raw, ticket, article } = await deliver('html-only.eml', 'lena@uni-html.example');
  t.is(ticket.subject, 'Access request for the R&D collection');
  // The HTML part as sent: everything after the header block (SMTP's CRLF line ends read as "\n").
  const htmlSent = raw.toString('utf8').split('\r\n\r\n').slice(1).join('\r\n\r\n').replace(/\r\n/g, '\n');
  t.is(article.html, htmlSent);
  const text = article.text;
  for (const line of ['Dear helpdesk,', 'I need access to the R&D collection for these projects:', 'Lung screening', 'Prostate MRI', 'Grüße, Lena – my page']) {
    t.true(text.includes(line), `article text has "${line}": ${JSON.stringify(text)}`);
  }
  t.false(/<[a-z!/]/i.test(text), 'no markup in the article text');
  t.false(text.includes('font-family'), 'no style sheet in the article text');
  t.false(text.includes('&amp;') || text.includes('&uuml;'), 'entities decoded');
  // First Line reads the derived text, not the markup.
  const notification = await notificationOf(ticket);
  t.true(notification.parsed.text.includes('Prostate MRI'));
  t.false(notification.parsed.text.includes('<li>'));
});

const charsetCases = [
  {
    name: 'ISO-8859-1',
    fixture: 'iso-8859-1-subject-and-body.eml',
    sender: 'renee@uni-latin1.example',
    senderName: 'Renée Müller',
    subject: "Problème d'accès à l'archive « Été »",
    text: "Bonjour,\n\nje n'arrive pas à accéder à l'archive « Été 2025 ».\nCoût estimé : 12 £, ½ des séries sont illisibles.\nGrüße, Søren Æbeltoft\n",
  },
  {
    name: 'Windows-1252 (€ and smart quotes)',
    fixture: 'windows-1252-euro-and-smart-quotes.eml',
    sender: 'zoe@uni-cp1252.example',
    senderName: 'Zoë O’Brien',
    subject: 'Invoice “€ 1.250” – wrong amount…',
    text: 'Hello,\n\nthe invoice says “€ 1.250,00” but the contract says ‘€ 1.000’ — please check.\nThanks… Zoë\n',
  },
  {
    name: 'ISO-2022-JP',
    fixture: 'iso-2022-jp-subject-and-body.eml',
    sender: 'yamada@uni-jis.example',
    senderName: '山田太郎',
    subject: '画像のアップロードができません',
    text: 'お世話になっております。\nDICOM画像のアップロードが途中で止まります。\nよろしくお願いいたします。\n',
  },
];

for (const c of charsetCases) {
  test(`${c.name}: subject (RFC 2047) and body are decoded in the ticket, the article, the acknowledgement and the notification`, async (t) => {
    const { ticket, article } = await deliver(c.fixture, c.sender);
    t.is(ticket.subject, c.subject);
    t.deepEqual(ticket.requester, { address: c.sender, name: c.senderName });
    t.is(article.subject, c.subject);
    t.is(article.text, c.text);
    const ack = await ackOf(ticket);
    t.is(ack.parsed.subject, `[CIE#${ticket.number}] ${c.subject}`);
    t.true(ack.parsed.text.includes(c.subject), 'the acknowledgement quotes the subject');
    t.true(ack.parsed.text.includes(`Hello ${c.senderName},`), 'the acknowledgement greets the sender by name');
    const notification = await notificationOf(ticket);
    t.is(notification.parsed.subject, `[CIE#${ticket.number}] ${c.subject}`);
    t.true(notification.parsed.text.includes(c.text.trim()), 'First Line reads the decoded body');
  });
}

test('a mail without Message-ID becomes a ticket, and the same bytes delivered twice make one article', async (t) => {
  const raw = fixture('no-message-id.eml');
  const sender = 'otto@uni-nomid.example';
  for (let i = 0; i < 2; i++) {
    const sent = await h.send({ envelope: { from: sender, to: [HELPDESK] }, raw });
    t.regex(sent.response, /^250 /);
  }
  const { Inbox, Article, Ticket, Outbox } = h.hg.store.models;
  const rawSha256 = sha256(raw);
  const items = await until(
    async () => {
      const all = await Inbox.find({ rawSha256 }).lean<InboxItem[]>();
      return all.length === 2 && all.every((i) => i.state !== 'pending') ? all : null;
    },
    { what: 'both deliveries to be processed', timeoutMs: 120_000 },
  );
  t.deepEqual(
    items.map((i) => i.state),
    ['done', 'done'],
  );
  t.is(String(items[0]!.articleId), String(items[1]!.articleId), 'both deliveries name the same article');
  const articles = await Article.find({ rawSha256 }).lean<Article[]>();
  t.is(articles.length, 1);
  t.is(articles[0]!.messageId, null);
  t.is(articles[0]!.key, `sha:${rawSha256}`);
  t.is(articles[0]!.text, 'My workspace says the quota is exceeded, but it is nearly empty.\n');
  const tickets = await Ticket.find({ 'requester.address': sender }).lean<Ticket[]>();
  t.is(tickets.length, 1);
  t.is(tickets[0]!.subject, 'Quota exceeded on my workspace');
  t.is(await Article.countDocuments({ ticketId: tickets[0]!._id }), 1);
  // One ticket, so one acknowledgement and one notification per First Line member.
  await ackOf(tickets[0]!);
  // Both deliveries are processed, so every mail they caused is in the outbox: wait until it is out.
  await until(async () => (await Outbox.countDocuments({ ticketNumber: tickets[0]!.number, state: 'queued' })) === 0, { what: 'the outbox to send', timeoutMs: 120_000 });
  t.is(h.relay.to(sender).length, 1);
  for (const member of FIRST_LINE) t.is(h.relay.to(member).filter((m) => m.parsed.subject.startsWith(`[CIE#${tickets[0]!.number}]`)).length, 1, member);
});

test('attachments are kept byte-exact: binary, PDF and a non-ASCII RFC 2231 file name', async (t) => {
  const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const pdf = fixture('attachment-report.pdf');
  const overview = Buffer.from('Übersicht: Größe der Serien\r\nKöln 12 GB\r\nMünchen 7 GB\r\n', 'utf8');
  const { ticket, article } = await deliver('attachments-binary-pdf-and-rfc2231-filename.eml', 'paul@uni-files.example');
  t.is(article.text, 'Please find the export, the report and the overview attached.\n');
  const originals = [
    { filename: 'all-bytes.bin', contentType: 'application/octet-stream', bytes: allBytes },
    { filename: 'report.pdf', contentType: 'application/pdf', bytes: pdf },
    { filename: 'Übersicht Größe – Köln.txt', contentType: 'text/plain', bytes: overview },
  ];
  t.deepEqual(
    article.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, size: a.size, sha256: a.sha256 })),
    originals.map((o) => ({ filename: o.filename, contentType: o.contentType, size: o.bytes.length, sha256: sha256(o.bytes) })),
  );
  for (const o of originals) {
    const stored = await h.hg.store.blobs.get(sha256(o.bytes));
    t.truthy(stored, `${o.filename} is stored`);
    t.is(sha256(stored!), sha256(o.bytes), o.filename);
    t.true(stored!.equals(o.bytes), `${o.filename} byte for byte`);
  }
  // First Line is told which files came with the ticket.
  const notification = await notificationOf(ticket);
  t.true(notification.parsed.text.includes('Attachments: all-bytes.bin, report.pdf, Übersicht Größe – Köln.txt'), notification.parsed.text);
});
