import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import test from 'ava';
import type { Article } from '../src/db/models/article.ts';
import type { InboxItem } from '../src/db/models/inbox.ts';
import type { Ticket } from '../src/db/models/ticket.ts';
import { parseMessage, parsedToJson } from '../src/mail/parse/parse.ts';
import { HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { fixture } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';

// Real-world mail that parsed wrong: each fixture is delivered over real SMTP, byte for byte,
// and the test reads what a user would see (the ticket, its article, its files); bounce reports,
// which other rules keep from becoming tickets, are checked on `helpgate parse`'s JSON.
let h: TestHelpgate;
test.before(async () => {
  h = await startTestHelpgate(null);
});
test.after.always(async () => {
  await h?.stop();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface Filed {
  item: InboxItem;
  article: Article;
  ticket: Ticket;
}

async function deliver(name: string | Buffer, mailFrom: string): Promise<Filed> {
  const raw = typeof name === 'string' ? fixture(name) : name;
  const { Inbox, Article, Ticket } = h.hg.store.models;
  const rawSha256 = sha256(raw);
  // The same bytes may have come before: wait for this delivery's item, the newest.
  const before = await Inbox.countDocuments({ rawSha256 });
  const sent = await h.send({ envelope: { from: mailFrom, to: [HELPDESK] }, raw });
  if (!/^250 /.test(sent.response)) throw new Error(`refused: ${sent.response}`);
  const item = await until(
    async () => {
      const all = await Inbox.find({ rawSha256 }).sort({ receivedAt: -1, _id: -1 }).lean<InboxItem[]>();
      return all.length > before && all.every((i) => i.state !== 'pending') ? all[0]! : null;
    },
    { what: `the inbox item of ${typeof name === 'string' ? name : 'a mail'}`, timeoutMs: 120_000 },
  );
  if (item.state !== 'done') throw new Error(`inbox item is ${item.state}: ${item.lastError ?? item.note}`);
  const article = (await Article.findById(item.articleId).lean<Article>())!;
  const ticket = (await Ticket.findOne({ number: article.ticketNumber }).lean<Ticket>())!;
  return { item, article, ticket };
}

async function stored(article: Article): Promise<{ filename: string | null; contentType: string; bytes: Buffer }[]> {
  return Promise.all(article.attachments.map(async (a) => ({ filename: a.filename, contentType: a.contentType, bytes: (await h.hg.store.blobs.get(a.sha256))! })));
}

const parsedFixture = async (name: string) => parsedToJson(await parseMessage(fixture(name)));

// 1. A text/plain part beside an HTML part in multipart/mixed.
for (const [name, sender, parts] of [
  ['mixed-html-then-plain-text.eml', 'nora@uni-mixed.example', ['The viewer crops the last slice of every series.', 'Steps: open study 8, scroll to the end, slice 120 is cut in half.']],
  ['mixed-plain-text-then-html.eml', 'omar@uni-mixed.example', ['Please see the QA report below: 3 of 40 series fail <the> check & stop.', 'Series 12']],
  ['alternative-with-plain-footer.eml', 'pia@uni-mixed.example', ['Could my project quota be raised to 2 TB?', 'Uni Mixed Radiology - Disclaimer: this mail may contain patient data.']],
] as const) {
  test(`${name}: the text of every part reaches the article, and the HTML the ticket shows holds the plain part too`, async (t) => {
    const { article } = await deliver(name, sender);
    for (const p of parts) t.true(article.text.includes(p), `article text has "${p}": ${JSON.stringify(article.text)}`);
    t.truthy(article.html);
    // The plain part is in the HTML, escaped as text.
    const plain = parts.find((p) => !p.startsWith('Series') && !p.startsWith('The viewer') && !p.startsWith('Could'))!;
    t.true(article.html!.includes(plain.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')), article.html!);
  });
}

// 2. Raw 8-bit headers in an undeclared legacy charset.
test('a GBK Subject and From name sent as raw bytes are read as Chinese, not as U+FFFD', async (t) => {
  const { ticket, article } = await deliver('raw-8bit-gbk-subject-and-from.eml', 'wang@uni-gbk.example');
  t.is(ticket.subject, '上传图像时出现错误，请帮忙检查');
  t.deepEqual(ticket.requester, { address: 'wang@uni-gbk.example', name: '王小明' });
  t.is(article.text, '您好，\n上传到第三个序列时总是失败。\n谢谢！\n');
});

test('Shift_JIS headers in a mail whose body names no charset of theirs are detected (chardet)', async (t) => {
  const { ticket } = await deliver('raw-8bit-shift-jis-headers-ascii-body.eml', 'sato@uni-sjis.example');
  t.is(ticket.subject, 'アップロードが途中で止まります');
  t.is(ticket.requester.name, '佐藤花子');
});

test('raw UTF-8 headers (RFC 6532) stay as they are', async (t) => {
  const { ticket } = await deliver('raw-utf8-headers-rfc6532.eml', 'juergen@uni-utf8.example');
  t.is(ticket.subject, 'Größenbeschränkung für Uploads – 日本語 ok');
  t.is(ticket.requester.name, 'Jürgen Weiß');
});

// 3. Who sent it, when From is missing or broken.
test('a mail without From is from its Reply-To address, not from the envelope sender', async (t) => {
  const { ticket, article } = await deliver('no-from-only-reply-to.eml', 'forms@webforms-nofrom.example');
  t.deepEqual(ticket.requester, { address: 'quinn@uni-nofrom.example', name: 'Quinn Park' });
  t.is(article.from?.address, 'quinn@uni-nofrom.example');
});

test('of several From headers the first that names an address is the sender', async (t) => {
  const { ticket } = await deliver('several-from-first-unparseable.eml', 'relay@uni-twofrom.example');
  t.deepEqual(ticket.requester, { address: 'rafael@uni-twofrom.example', name: 'Rafael Costa' });
});

// 4. Display names as written.
test('a display name with an unquoted comma and punctuation is kept as written', async (t) => {
  const { ticket } = await deliver('display-name-unquoted-comma-and-punctuation.eml', 'anna@uni-names.example');
  t.deepEqual(ticket.requester, { address: 'anna@uni-names.example', name: "Dr. Anna Maria O'Neil-Smith, PhD" });
});

test('display names: unusual punctuation kept, quoted and encoded names decoded, lists of addresses still split', async (t) => {
  const cases: [string, { address: string; name: string }[]][] = [
    ['Müller, Hans (IT) <h@x.example>', [{ address: 'h@x.example', name: 'Müller, Hans (IT)' }]],
    ['Lab: Imaging Team <lab@x.example>', [{ address: 'lab@x.example', name: 'Lab: Imaging Team' }]],
    ['Lee; Kim <lk@x.example>', [{ address: 'lk@x.example', name: 'Lee; Kim' }]],
    ['John "JJ" Smith <j@x.example>', [{ address: 'j@x.example', name: 'John "JJ" Smith' }]],
    ['"Smith, John" <j@x.example>', [{ address: 'j@x.example', name: 'Smith, John' }]],
    ['=?utf-8?Q?M=C3=BCller=2C_Hans?= <h@x.example>', [{ address: 'h@x.example', name: 'Müller, Hans' }]],
    ['Anna <anna@x.example> (via list)', [{ address: 'anna@x.example', name: 'Anna' }]],
    ['a@x.example, Bob <b@x.example>', [{ address: 'a@x.example', name: '' }, { address: 'b@x.example', name: 'Bob' }]],
  ];
  for (const [value, expected] of cases) {
    const m = await parseMessage(Buffer.from(`From: a@sender.example\r\nTo: ${value}\r\nSubject: s\r\n\r\nbody\r\n`));
    t.deepEqual(m.to, expected, value);
  }
});

// 5. Every attachment kept as one.
test('the original message inside a bounce report is an attachment, even when marked inline', async (t) => {
  const j = await parsedFixture('bounce-report-with-original-message-inline.eml');
  t.deepEqual(
    j.attachments.map((a) => [a.filename, a.contentType]),
    [['message.eml', 'message/rfc822']],
  );
  const original = (await parseMessage(fixture('bounce-report-with-original-message-inline.eml'))).attachments[0]!.content.toString('utf8');
  t.true(original.includes('Message-ID: <ack-100001@helpdesk.localhost>'));
  t.true(original.includes('We received your request.'));
  // The report's own words stay the text; the original's body is not mixed into it.
  t.true(j.text.includes('Your message could not be delivered to tom@unreachable.example.'));
  t.false(j.text.includes('We received your request.'));
});

test('the returned headers of a bounce report are an attachment', async (t) => {
  const j = await parsedFixture('bounce-report-with-original-headers.eml');
  t.deepEqual(
    j.attachments.map((a) => [a.filename, a.contentType]),
    [['message-headers.txt', 'text/rfc822-headers']],
  );
});

test('a uuencoded file in a text body becomes an attachment and leaves the text', async (t) => {
  const { article } = await deliver('uuencoded-file-in-text-body.eml', 'sven@uni-uu.example');
  t.is(article.text, 'The scanner console mailed the calibration file below.\n\nPlease load it for scanner 2.\n');
  const files = await stored(article);
  const expected = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from('scan 0042 calibration\n')]);
  t.deepEqual(
    files.map((f) => [f.filename, f.contentType]),
    [['calibration.bin', 'application/octet-stream']],
  );
  t.true(files[0]!.bytes.equals(expected));
});

// 6. TNEF (winmail.dat).
// tnef-winmail-dat-body-only.eml carries a winmail.dat written by KDE's KTNEF library
// (KTNEFWriter, Debian package libkf5tnef-dev): tnef-winmail-dat-body-only.make.cpp beside it is
// the program, compiled and run as its first lines say, its output base64-encoded into the mail.
test('a mail whose only part is winmail.dat gets its text from the TNEF body, and keeps winmail.dat', async (t) => {
  const { ticket, article } = await deliver('tnef-winmail-dat-body-only.eml', 'maria.rossi@uni-outlook.example');
  t.is(ticket.subject, 'Segmentation export is empty');
  t.is(article.text, 'Hello,\n\nthe segmentation export of study 17 is an empty file.\nCould you have a look?\n\nMaria\n');
  t.deepEqual(
    article.attachments.map((a) => [a.filename, a.contentType]),
    [['winmail.dat', 'application/ms-tnef']],
  );
});

// tnef-winmail-dat-with-attachments.eml carries testFiles/attachments.dat of the npm package
// node-tnef 1.4.0 (ISC licence), a winmail.dat as Outlook wrote it with two files inside.
test('the files inside winmail.dat become attachments with their long names, byte for byte as node-tnef reads them', async (t) => {
  const { article } = await deliver('tnef-winmail-dat-with-attachments.eml', 'tomas@uni-outlook.example');
  t.is(article.text, 'The picture and the bookmarks are attached.');
  const files = await stored(article);
  t.deepEqual(
    files.map((f) => [f.filename, f.contentType, f.bytes.length]),
    [
      ['winmail.dat', 'application/ms-tnef', 98184],
      ['zappa_av1.jpg', 'image/jpeg', 2937],
      ['bookmark.htm', 'text/html', 85805],
    ],
  );
  // node-tnef, run apart (it changes String.prototype when loaded), finds the same bytes
  // under the 8.3 names.
  const nodeTnef = createRequire(import.meta.url).resolve('node-tnef');
  const script = `require(${JSON.stringify(nodeTnef)}).parseBuffer(require('fs').readFileSync(0), (err, r) => process.stderr.write(JSON.stringify(r.Attachments.map((a) => [a.Title, require('crypto').createHash('sha256').update(Buffer.from(a.Data)).digest('hex')]))))`;
  const run = spawnSync(process.execPath, ['-e', script], { input: files[0]!.bytes });
  const out = run.stderr.toString();
  t.deepEqual(JSON.parse(out), [
    ['ZAPPA_~2.JPG', sha256(files[1]!.bytes)],
    ['bookmark.htm', sha256(files[2]!.bytes)],
  ]);
});

// 7. Duplicate Message-ID.
test('another mail reusing a Message-ID is its own article noted "duplicate Message-ID"; the same mail again, by any path, stays one', async (t) => {
  const { Article, Inbox } = h.hg.store.models;
  const messageId = '<same-id-1@shared-generator.example>';
  const first = await deliver('duplicate-message-id-original.eml', 'uma@uni-dupid.example');
  t.is(first.article.note ?? null, null);

  const other = await deliver('duplicate-message-id-other-mail.eml', 'victor@other-dupid.example');
  t.not(String(other.article._id), String(first.article._id));
  t.is(other.article.note, 'duplicate Message-ID');
  t.is(other.article.text, 'Please reset my password.\n');
  t.is(other.article.from?.address, 'victor@other-dupid.example');

  // The same bytes again, then the same mail as a second path hands it over (one more Received).
  const raw = fixture('duplicate-message-id-original.eml');
  const again = await deliver(raw, 'uma@uni-dupid.example');
  t.is(String(again.item.articleId), String(first.article._id));
  const viaImap = Buffer.concat([Buffer.from('Received: from mx2.uni-dupid.example by imap.uni-dupid.example; Mon, 02 Mar 2026 15:01:00 +0100\r\nDelivered-To: help@helpdesk.localhost\r\n'), raw]);
  const relayed = await deliver(viaImap, 'uma@uni-dupid.example');
  t.is(String(relayed.item.articleId), String(first.article._id));
  // …and the other mail again is its duplicate article again, not a third one.
  const otherAgain = await deliver(fixture('duplicate-message-id-other-mail.eml'), 'victor@other-dupid.example');
  t.is(String(otherAgain.item.articleId), String(other.article._id));

  t.is(await Article.countDocuments({ messageId }), 2);
  t.is(await Inbox.countDocuments({ state: 'done', articleId: first.article._id }), 3);
});
