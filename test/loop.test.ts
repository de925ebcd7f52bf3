import test from 'ava';
import { databasePerTest } from './helpers/database-per-test.ts';
import { FIRST_LINE, HELPDESK, startTestHelpgate } from './helpers/helpgate.ts';
import { addressesOf, clientReply, fixture, mailTo, quiet } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';

const freshDb = databasePerTest(test);

const ADA = 'ada@uni.example';
const BRUNO = 'bruno@uni.example';
const [FL_AGENT, FL_BACKUP] = FIRST_LINE as [string, string];

test('mail to help@ becomes a ticket, is acknowledged and reaches First Line', async (t) => {
  const h = await startTestHelpgate(t, { db: await freshDb() });
  const sent = await h.send({ from: 'Ada Researcher <ada@uni.example>', to: HELPDESK, subject: 'Cannot upload DICOM', text: 'The upload stops at 50%.' });
  t.regex(sent.response, /^250 /);
  const ack = await h.relay.waitFor((m) => m.envelope.rcptTo.includes('ada@uni.example'), 'the acknowledgement');
  t.is(ack.parsed.subject, '[CIE#100001] Cannot upload DICOM');
  t.is(ack.parsed.inReplyTo, sent.messageId);
  t.true(ack.parsed.references.includes(sent.messageId));
  t.is(ack.header('auto-submitted'), 'auto-replied');
  // Her own reply address of the ticket: a reply to it proves she reads that mailbox.
  t.regex(ack.parsed.replyTo.map((a) => a.address).join(), /^help\+100001-[a-z2-7]{20}@helpdesk\.localhost$/);
  t.regex(ack.parsed.messageId ?? '', /@helpdesk\.localhost>$/);
  t.true(ack.parsed.text.includes('http://localhost:3000/tickets/100001'));
  for (const member of FIRST_LINE) {
    const n = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(member), `the notification to ${member}`);
    t.is(n.parsed.subject, '[CIE#100001] Cannot upload DICOM');
    t.true(n.parsed.text.includes('The upload stops at 50%.'));
  }
  const [ticket] = await h.tickets();
  t.is(ticket!.number, 100001);
  t.is(ticket!.su, 'first-line');
  t.is(ticket!.state, 'new');
  await until(async () => (await h.articles(100001)).length === 1);
});

test('the whole loop: request, acknowledgement, notification, agent answer, two requester follow-ups', async (t) => {
  const h = await startTestHelpgate(t, { db: await freshDb(), env: { PUBLIC_URL: 'https://helpdesk.example.org' } });

  // (1) Ada writes to the helpdesk.
  const request = await h.send({ from: 'Ada Researcher <ada@uni.example>', to: HELPDESK, subject: 'Cannot upload DICOM', text: 'The upload stops at 50%.' });
  t.regex(request.response, /^250 /);

  // (2) She is acknowledged in her own thread, with the ticket number and its page.
  const ack = await mailTo(h, ADA, request.messageId, 'the acknowledgement');
  t.is(ack.parsed.subject, '[CIE#100001] Cannot upload DICOM');
  t.deepEqual(ack.parsed.references, [request.messageId]);
  t.regex(addressesOf(ack.parsed.replyTo).join(), /^help\+100001-[a-z2-7]{20}@helpdesk\.localhost$/);
  t.is(ack.parsed.from?.address, HELPDESK);
  t.is(ack.header('auto-submitted'), 'auto-replied');
  t.regex(ack.parsed.messageId ?? '', /^<[^<>@\s]+@helpdesk\.localhost>$/);
  t.true(ack.parsed.text.includes('100001'));
  t.true(ack.parsed.text.includes('https://helpdesk.example.org/tickets/100001'));
  /** Every Message-ID Ada's mailbox holds: hers and ours to her. */
  const knownToAda = [request.messageId, ack.parsed.messageId!];

  // (3) Each First Line member is told, with the tag and her text, in the request's thread.
  const notices = [];
  for (const member of FIRST_LINE) {
    const n = await mailTo(h, member, request.messageId, `the notification to ${member}`);
    t.is(n.parsed.subject, '[CIE#100001] Cannot upload DICOM');
    t.true(n.parsed.text.includes('The upload stops at 50%.'));
    t.true(n.parsed.references.includes(request.messageId));
    // Each agent replies to their own address for this ticket (engine/reply-tokens.ts).
    t.regex(addressesOf(n.parsed.replyTo).join(), /^help\+100001-[a-z2-7]{20}@helpdesk\.localhost$/);
    t.is(n.parsed.from?.address, HELPDESK);
    t.truthy(n.header('auto-submitted'));
    t.regex(n.parsed.messageId ?? '', /@helpdesk\.localhost>$/);
    notices.push(n);
  }
  t.is((await h.ticket(100001))!.state, 'new');

  // (4) A First Line member answers by pressing "Reply" on the notification.
  const agentText = 'Please try the chunked uploader in the portal.';
  const answer = await h.send(clientReply(notices[0]!, { from: `Fiona Line <${FL_AGENT}>`, text: agentText }));
  t.regex(answer.response, /^250 /);
  const reply = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(ADA) && m.parsed.text.includes(agentText), 'the answer mailed to Ada', 60_000);
  t.is(reply.parsed.subject, '[CIE#100001] Cannot upload DICOM');
  t.is(reply.parsed.from?.address, HELPDESK);
  t.regex(reply.parsed.from?.name ?? '', /Fiona Line/);
  t.deepEqual(addressesOf(reply.parsed.replyTo), addressesOf(ack.parsed.replyTo), 'her reply address, as on the acknowledgement');
  t.is(reply.header('auto-submitted'), null, 'a person wrote this answer');
  t.true(knownToAda.includes(reply.parsed.inReplyTo!), 'the answer replies to a mail Ada has');
  t.true(reply.parsed.references.includes(request.messageId));
  t.true(reply.parsed.references.includes(reply.parsed.inReplyTo!));
  t.regex(reply.parsed.messageId ?? '', /@helpdesk\.localhost>$/);
  t.is((await h.ticket(100001))!.state, 'in progress');
  knownToAda.push(reply.parsed.messageId!);

  // (5a) Ada answers the reply; her client keeps the tag in the subject.
  const followUp = await h.send(clientReply(reply, { from: 'Ada Researcher <ada@uni.example>', text: 'The chunked uploader stops at 80%.' }));
  t.regex(followUp.response, /^250 /);
  for (const member of FIRST_LINE) {
    const n = await mailTo(h, member, followUp.messageId, `the follow-up notification to ${member}`);
    t.is(n.parsed.subject, '[CIE#100001] Cannot upload DICOM');
    t.true(n.parsed.text.includes('The chunked uploader stops at 80%.'));
    t.true(n.parsed.references.includes(request.messageId));
  }

  // (5b) She writes again from a client that keeps only the thread headers: no tag, new subject.
  const untagged = await h.send({
    from: 'Ada Researcher <ada@uni.example>',
    to: HELPDESK,
    subject: 'Still failing after the update',
    text: 'Since the update it fails at 10%.',
    inReplyTo: reply.parsed.messageId!,
    references: [...reply.parsed.references, reply.parsed.messageId!],
  });
  t.regex(untagged.response, /^250 /);
  for (const member of FIRST_LINE) {
    const n = await mailTo(h, member, untagged.messageId, `the second follow-up notification to ${member}`);
    t.is(n.parsed.subject, '[CIE#100001] Cannot upload DICOM');
    t.true(n.parsed.text.includes('Since the update it fails at 10%.'));
    t.true(n.parsed.references.includes(request.messageId));
  }

  await quiet(h);
  t.deepEqual((await h.tickets()).map((x) => x.number), [100001]);
  const articles = await h.articles(100001);
  t.deepEqual(
    articles.map((a) => [a.authorRole, a.from?.address, a.messageId]),
    [
      ['requester', ADA, request.messageId],
      ['agent', FL_AGENT, answer.messageId],
      ['requester', ADA, followUp.messageId],
      ['requester', ADA, untagged.messageId],
    ],
  );
  t.is((await h.ticket(100001))!.state, 'in progress');
  // Ada got the acknowledgement and the answer, nothing for her own follow-ups.
  t.deepEqual(
    h.relay.to(ADA).map((m) => m.parsed.messageId),
    [ack.parsed.messageId, reply.parsed.messageId],
  );
});

test('a Cc on the first mail becomes a participant: copied on the answer, and their own reply joins the ticket', async (t) => {
  const h = await startTestHelpgate(t, { db: await freshDb() });
  const request = await h.send({
    from: 'Ada Researcher <ada@uni.example>',
    to: HELPDESK,
    cc: 'Bruno Colleague <bruno@uni.example>',
    subject: 'Export to NIfTI fails',
    text: 'The export job ends with an error.',
  });
  t.regex(request.response, /^250 /);
  const notice = await mailTo(h, FL_BACKUP, request.messageId, 'the notification to the First Line backup');
  t.deepEqual((await h.ticket(100001))!.participants, [BRUNO]);

  // The agent's answer goes to Ada, with Bruno in Cc.
  const agentText = 'The export needs the series to be complete; series 4 is missing slices.';
  await h.send(clientReply(notice, { from: `Finn Backup <${FL_BACKUP}>`, text: agentText }));
  // One copy each, both showing Ada in To and Bruno in Cc, each with its reader's own Reply-To.
  const reply = await h.relay.waitFor((m) => m.parsed.text.includes(agentText) && m.envelope.rcptTo.includes(BRUNO), 'the answer to Bruno', 60_000);
  const adaCopy = await h.relay.waitFor((m) => m.parsed.text.includes(agentText) && m.envelope.rcptTo.includes(ADA), 'the answer to Ada', 60_000);
  for (const copy of [reply, adaCopy]) {
    t.deepEqual(addressesOf(copy.parsed.to), [ADA]);
    t.deepEqual(addressesOf(copy.parsed.cc), [BRUNO]);
  }
  t.deepEqual(reply.envelope.rcptTo, [BRUNO]);
  t.deepEqual(adaCopy.envelope.rcptTo, [ADA]);
  t.regex(addressesOf(reply.parsed.replyTo).join(), /^help\+100001-[a-z2-7]{20}@helpdesk\.localhost$/);
  t.notDeepEqual(addressesOf(reply.parsed.replyTo), addressesOf(adaCopy.parsed.replyTo));
  t.is(reply.parsed.subject, '[CIE#100001] Export to NIfTI fails');
  t.is(reply.parsed.from?.address, HELPDESK);
  t.is(reply.header('auto-submitted'), null);
  t.true(reply.parsed.references.includes(request.messageId));

  // Bruno answers to all: the helpdesk, with Ada in Cc.
  const brunoText = 'I re-sent series 4 from our PACS this morning.';
  const brunoReply = await h.send(clientReply(reply, { from: 'Bruno Colleague <bruno@uni.example>', cc: ADA, text: brunoText }));
  t.regex(brunoReply.response, /^250 /);
  for (const member of FIRST_LINE) {
    const n = await mailTo(h, member, brunoReply.messageId, `the notification of Bruno's reply to ${member}`);
    t.is(n.parsed.subject, '[CIE#100001] Export to NIfTI fails');
    t.true(n.parsed.text.includes(brunoText));
  }

  await quiet(h);
  t.deepEqual((await h.tickets()).map((x) => x.number), [100001]);
  t.deepEqual(
    (await h.articles(100001)).map((a) => [a.authorRole, a.from?.address]),
    [
      ['requester', ADA],
      ['agent', FL_BACKUP],
      ['participant', BRUNO],
    ],
  );
});

test('a new request delivered twice makes one ticket, one acknowledgement and one notification per member', async (t) => {
  const h = await startTestHelpgate(t, { db: await freshDb() });
  const raw = fixture('redelivered-new-request.eml');
  const envelope = { from: ADA, to: [HELPDESK] };
  const answers = await Promise.all([h.send({ envelope, raw }), h.send({ envelope, raw })]);
  for (const a of answers) t.regex(a.response, /^250 /);

  await quiet(h);
  t.deepEqual((await h.tickets()).map((x) => x.number), [100001]);
  t.is((await h.articles(100001)).length, 1);
  t.deepEqual((await h.inbox()).map((i) => [i.state, i.ticketNumber]), [
    ['done', 100001],
    ['done', 100001],
  ]);
  const acks = h.relay.to(ADA);
  t.is(acks.length, 1);
  t.is(acks[0]!.parsed.subject, '[CIE#100001] Viewer shows a blank series');
  t.is(acks[0]!.parsed.inReplyTo, '<redelivered-request.4f2a@uni.example>');
  for (const member of FIRST_LINE) t.is(h.relay.to(member).length, 1, `notifications to ${member}`);
});

test('a follow-up delivered twice, and again later, is added once and notified once per member', async (t) => {
  const h = await startTestHelpgate(t, { db: await freshDb() });
  const envelope = { from: ADA, to: [HELPDESK] };
  await h.send({ envelope, raw: fixture('redelivered-new-request.eml') });
  await quiet(h);

  const raw = fixture('redelivered-follow-up.eml');
  const answers = await Promise.all([h.send({ envelope, raw }), h.send({ envelope, raw })]);
  for (const a of answers) t.regex(a.response, /^250 /);
  await quiet(h);
  // A relay that lost our "250" delivers it once more, long after.
  t.regex((await h.send({ envelope, raw })).response, /^250 /);
  await quiet(h);

  t.deepEqual((await h.tickets()).map((x) => x.number), [100001]);
  t.deepEqual(
    (await h.articles(100001)).map((a) => a.messageId),
    ['<redelivered-request.4f2a@uni.example>', '<redelivered-follow-up.9c1e@uni.example>'],
  );
  t.is(h.relay.to(ADA).length, 1, 'only the acknowledgement of the request');
  for (const member of FIRST_LINE) {
    const followUps = h.relay.to(member).filter((m) => m.parsed.inReplyTo === '<redelivered-follow-up.9c1e@uni.example>');
    t.is(followUps.length, 1, `follow-up notifications to ${member}`);
    t.is(followUps[0]!.parsed.subject, '[CIE#100001] Viewer shows a blank series');
    t.true(followUps[0]!.parsed.text.includes('It happens in Firefox and in Chromium alike.'));
  }
});
