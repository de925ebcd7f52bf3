import test from 'ava';
import { FIRST_LINE, HELPDESK, startTestHelpgate } from './helpers/helpgate.ts';
import { until } from './helpers/wait.ts';

test('mail to help@ becomes a ticket, is acknowledged and reaches First Line', async (t) => {
  const h = await startTestHelpgate(t);
  const sent = await h.send({ from: 'Ada Researcher <ada@uni.example>', to: HELPDESK, subject: 'Cannot upload DICOM', text: 'The upload stops at 50%.' });
  t.regex(sent.response, /^250 /);
  const ack = await h.relay.waitFor((m) => m.envelope.rcptTo.includes('ada@uni.example'), 'the acknowledgement');
  t.is(ack.parsed.subject, '[CIE#100001] Cannot upload DICOM');
  t.is(ack.parsed.inReplyTo, sent.messageId);
  t.true(ack.parsed.references.includes(sent.messageId));
  t.is(ack.header('auto-submitted'), 'auto-replied');
  t.deepEqual(ack.parsed.replyTo.map((a) => a.address), [HELPDESK]);
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
