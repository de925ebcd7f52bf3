import test from 'ava';
import { HELPDESK, startTestHelpgate } from './helpers/helpgate.ts';
import { mailTo, ticketOf } from './helpers/mail-flow.ts';

const ADA = 'ada@uni.example';
const FROM_ADA = 'Ada Researcher <ada@uni.example>';

test('a reply whose subject tag and In-Reply-To name different tickets joins the tagged one; with a matching tag, the referenced one', async (t) => {
  const h = await startTestHelpgate(t);
  const first = await h.send({ from: FROM_ADA, to: HELPDESK, subject: 'First question', text: 'One.' });
  const firstAck = await mailTo(h, ADA, first.messageId, 'the acknowledgement of the first ticket');
  const second = await h.send({ from: FROM_ADA, to: HELPDESK, subject: 'Second question', text: 'Two.' });
  await mailTo(h, ADA, second.messageId, 'the acknowledgement of the second ticket');
  t.deepEqual([await ticketOf(h, first.messageId), await ticketOf(h, second.messageId)], [100001, 100002]);

  // Answering the first acknowledgement, but with the second ticket's tag typed into the subject.
  const crossed = await h.send({ from: FROM_ADA, to: HELPDESK, subject: 'Re: [CIE#100002] about the other one', text: 'Three.', inReplyTo: firstAck.parsed.messageId!, references: [first.messageId, firstAck.parsed.messageId!] });
  t.is(await ticketOf(h, crossed.messageId), 100002, 'the tag decides');
  // An ordinary reply to the first acknowledgement: tag and In-Reply-To agree.
  const plain = await h.send({ from: FROM_ADA, to: HELPDESK, subject: `Re: ${firstAck.parsed.subject}`, text: 'Four.', inReplyTo: firstAck.parsed.messageId!, references: [first.messageId, firstAck.parsed.messageId!] });
  t.is(await ticketOf(h, plain.messageId), 100001);
  t.is((await h.tickets()).length, 2);
});
