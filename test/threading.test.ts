import test, { type ExecutionContext } from 'ava';
import { databasePerTest } from './helpers/database-per-test.ts';
import { FIRST_LINE, HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { mailTo, quiet, ticketOf } from './helpers/mail-flow.ts';

const freshDb = databasePerTest(test);

const ADA = 'ada@uni.example';
const FROM_ADA = 'Ada Researcher <ada@uni.example>';

/** Ada opens ticket 100001; resolves with her request's and our acknowledgement's Message-IDs. */
async function openFirstTicket(h: TestHelpgate): Promise<{ request: string; ack: string }> {
  const sent = await h.send({ from: FROM_ADA, to: HELPDESK, subject: 'Cannot upload DICOM', text: 'The upload stops at 50%.' });
  const ack = await mailTo(h, ADA, sent.messageId, 'the acknowledgement of the first ticket');
  if (ack.parsed.subject !== '[CIE#100001] Cannot upload DICOM') throw new Error(`unexpected acknowledgement subject ${ack.parsed.subject}`);
  return { request: sent.messageId, ack: ack.parsed.messageId! };
}

/** First Line hears of the mail `messageId` as news on ticket `number`. */
async function assertFirstLineToldOn(t: ExecutionContext, h: TestHelpgate, messageId: string, number: number, what: string) {
  for (const member of FIRST_LINE) {
    const n = await mailTo(h, member, messageId, `the notification of ${what} to ${member}`);
    t.true(n.parsed.subject.startsWith(`[CIE#${number}] `), `notification of ${what} carries [CIE#${number}]: ${n.parsed.subject}`);
  }
}

test('a follow-up tagged behind any reply or forward prefix, anywhere in the subject, in any case, joins the ticket', async (t) => {
  const h = await startTestHelpgate(t, { db: await freshDb() });
  await openFirstTicket(h);

  const subjects = [
    'Re: [CIE#100001] Cannot upload DICOM',
    'RE: [CIE#100001] Cannot upload DICOM',
    'RE[2]: [CIE#100001] Cannot upload DICOM',
    'Re(3): [CIE#100001] Cannot upload DICOM',
    'AW: [CIE#100001] Cannot upload DICOM',
    'SV: [CIE#100001] Cannot upload DICOM',
    'Fwd: [CIE#100001] Cannot upload DICOM',
    'FW: [CIE#100001] Cannot upload DICOM',
    'WG: [CIE#100001] Cannot upload DICOM',
    'Re: Fwd: AW: [CIE#100001] Cannot upload DICOM',
    'Upload [CIE#100001] still stops at 50%',
    'Upload still stops at 50% [CIE#100001]',
    'Re: [cie#100001] cannot upload dicom',
  ];
  // No In-Reply-To, no References: the tag is the only link to the ticket.
  const sent = new Map<string, string>();
  for (const subject of subjects) {
    const { messageId, response } = await h.send({ from: FROM_ADA, to: HELPDESK, subject, text: `Sent as "${subject}".` });
    t.regex(response, /^250 /);
    sent.set(subject, messageId);
  }

  const landed: Record<string, number> = {};
  for (const [subject, messageId] of sent) landed[subject] = await ticketOf(h, messageId);
  t.deepEqual(landed, Object.fromEntries(subjects.map((s) => [s, 100001])));
  for (const [subject, messageId] of sent) await assertFirstLineToldOn(t, h, messageId, 100001, `"${subject}"`);

  await quiet(h);
  t.deepEqual((await h.tickets()).map((x) => x.number), [100001]);
  t.is((await h.articles(100001)).length, 1 + subjects.length);
  t.is(h.relay.to(ADA).length, 1, 'no acknowledgement for follow-ups: only the one of the request');
});

test('a reply without tag and with a new subject joins the ticket through References alone', async (t) => {
  const h = await startTestHelpgate(t, { db: await freshDb() });
  const { request, ack } = await openFirstTicket(h);

  // A client that writes References but no In-Reply-To, answering our acknowledgement…
  const toAck = await h.send({ from: FROM_ADA, to: HELPDESK, subject: 'Different question: export to NIfTI', text: 'Can I export to NIfTI?', references: [request, ack] });
  // …and Ada answering her own request from her Sent folder.
  const toOwn = await h.send({ from: FROM_ADA, to: HELPDESK, subject: 'One more thing', text: 'The file names contain umlauts.', references: request });

  for (const sent of [toAck, toOwn]) {
    t.is(await ticketOf(h, sent.messageId), 100001);
    await assertFirstLineToldOn(t, h, sent.messageId, 100001, 'a References-only reply');
  }
  await quiet(h);
  t.deepEqual((await h.tickets()).map((x) => x.number), [100001]);
  // (The two replies were sent back to back and may be filed in either order.)
  const articles = await h.articles(100001);
  t.deepEqual(
    articles.map((a) => [a.subject, a.inReplyTo]).sort(),
    [
      ['Cannot upload DICOM', null],
      ['Different question: export to NIfTI', null],
      ['One more thing', null],
    ],
  );
  t.is(h.relay.to(ADA).length, 1, 'no acknowledgement for follow-ups');
});

test('the same subject text without tag or References opens a new ticket', async (t) => {
  const h = await startTestHelpgate(t, { db: await freshDb() });
  await openFirstTicket(h);
  const sent = await h.send({ from: FROM_ADA, to: HELPDESK, subject: 'Re: Cannot upload DICOM', text: 'Same words, no thread headers.' });
  t.is(await ticketOf(h, sent.messageId), 100002);
  const ack = await mailTo(h, ADA, sent.messageId, 'the acknowledgement of the second ticket');
  t.is(ack.parsed.subject, '[CIE#100002] Cannot upload DICOM');
  t.is((await h.articles(100001)).length, 1);
});

test("other systems' tags, an unbracketed tag and a tag of an unknown ticket each open a new ticket", async (t) => {
  const h = await startTestHelpgate(t, { db: await freshDb() });
  await openFirstTicket(h);

  const subjects = [
    '[Ticket#100001] Printer on floor 2 is jammed',
    'GGUS-Ticket-ID: #100001 Transfer errors at site X',
    '[ABC#100001] Quota request',
    '[CIE-100001] Cannot log in',
    'CIE#100001 Dataset missing',
    '[CIE#999999] Which ticket is this?',
  ];
  const sent = new Map<string, string>();
  for (const subject of subjects) {
    const { messageId, response } = await h.send({ from: FROM_ADA, to: HELPDESK, subject, text: `Sent as "${subject}".` });
    t.regex(response, /^250 /);
    sent.set(subject, messageId);
  }

  const numbers = new Set<number>();
  for (const [subject, messageId] of sent) {
    const number = await ticketOf(h, messageId);
    t.true(number > 100001, `"${subject}" opened a new ticket (it landed on ${number})`);
    numbers.add(number);
    // Ada learns the new ticket's number from its acknowledgement.
    const ack = await mailTo(h, ADA, messageId, `the acknowledgement of "${subject}"`);
    t.true(ack.parsed.subject.startsWith(`[CIE#${number}] `), ack.parsed.subject);
    t.is((await h.ticket(number))!.referredTicket, null);
  }
  t.is(numbers.size, subjects.length, 'one new ticket each');

  await quiet(h);
  t.is((await h.tickets()).length, 1 + subjects.length);
  t.is((await h.articles(100001)).length, 1, 'nothing was added to ticket 100001');
});

test('a tagged mail from a stranger opens a new ticket whose First Line notification names the ticket it referred to', async (t) => {
  const h = await startTestHelpgate(t, { db: await freshDb() });
  await openFirstTicket(h);

  const stranger = await h.send({
    from: 'Mallory Outsider <mallory@elsewhere.example>',
    to: HELPDESK,
    subject: 'Re: [CIE#100001] Cannot upload DICOM',
    text: 'Please send me the images that were uploaded.',
  });
  t.regex(stranger.response, /^250 /);
  t.is(await ticketOf(h, stranger.messageId), 100002);
  const ticket = (await h.ticket(100002))!;
  t.is(ticket.requester.address, 'mallory@elsewhere.example');
  t.is(ticket.referredTicket, 100001);

  const ack = await mailTo(h, 'mallory@elsewhere.example', stranger.messageId, "the stranger's acknowledgement");
  t.is(ack.parsed.subject, '[CIE#100002] Cannot upload DICOM');
  for (const member of FIRST_LINE) {
    const n = await mailTo(h, member, stranger.messageId, `the notification to ${member}`);
    t.is(n.parsed.subject, '[CIE#100002] Cannot upload DICOM');
    t.true(n.parsed.text.includes('[CIE#100001]'), 'the notification names the ticket the mail referred to');
    t.true(n.parsed.text.includes('Please send me the images that were uploaded.'));
  }

  await quiet(h);
  t.deepEqual(
    (await h.articles(100001)).map((a) => a.from?.address),
    [ADA],
    'the stranger was not added to the ticket',
  );
  t.is(h.relay.to(ADA).length, 1, 'Ada received nothing of the stranger');
});
