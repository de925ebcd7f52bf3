import test, { type ExecutionContext } from 'ava';
import type { Article } from '../src/db/models/article.ts';
import type { TicketEvent } from '../src/db/models/engine.ts';
import type { Ticket } from '../src/db/models/ticket.ts';
import { addWorkingDays } from '../src/domain/engine/calendar.ts';
import { agentAction } from '../src/domain/engine/actions.ts';
import { currentTicket, ticketEvents } from '../src/domain/engine/transition.ts';
import type { CapturedMail } from './helpers/capture-smtp.ts';
import { databasePerTest } from './helpers/database-per-test.ts';
import { FIRST_LINE, HELPDESK, startTestHelpgate, TST_AGENT, type TestHelpgate } from './helpers/helpgate.ts';
import { clientReply, mailTo, quiet } from './helpers/mail-flow.ts';
import { cliDatabaseEnv, runCli } from './helpers/cli.ts';
import { until } from './helpers/wait.ts';
import { retryInboxItem } from '../src/domain/ingest/worker.ts';

const freshDb = databasePerTest(test);

const ADA = 'ada@uni.example';
const FROM_ADA = 'Ada Researcher <ada@uni.example>';
const [FL_AGENT, FL_BACKUP] = FIRST_LINE as [string, string];
const FROM_FL = `Fiona Line <${FL_AGENT}>`;
const FROM_TST = `Tom Tech <${TST_AGENT}>`;

/** helpgate's clock for these tests: Monday 4 January 2027, 09:00 UTC, and only forward from there. */
class TestClock {
  private t = new Date('2027-01-04T09:00:00Z');
  now = () => new Date(this.t);
  advanceWorkingDays(days: number): void {
    this.t = addWorkingDays(this.t, days);
  }
  advanceMs(ms: number): void {
    this.t = new Date(this.t.getTime() + ms);
  }
}

async function start(t: ExecutionContext, clock = new TestClock()): Promise<{ h: TestHelpgate; clock: TestClock }> {
  const h = await startTestHelpgate(t, { db: await freshDb(), now: clock.now });
  return { h, clock };
}

/** Waits for a mail to `to` whose text contains `text` (and, if given, that is on ticket `number`). */
function mailWith(h: TestHelpgate, to: string, text: string, number?: number): Promise<CapturedMail> {
  return h.relay.waitFor(
    (m) => m.envelope.rcptTo.includes(to) && m.parsed.text.includes(text) && (number === undefined || m.parsed.subject.includes(`[CIE#${number}]`)),
    `a mail to ${to} saying "${text}"`,
    60_000,
  );
}

/** Everything the requester received, as text. */
function toAda(h: TestHelpgate): string {
  return h.relay
    .to(ADA)
    .map((m) => m.parsed.text)
    .join('\n=====\n');
}

async function events(h: TestHelpgate, number: number): Promise<TicketEvent[]> {
  const ticket = await h.ticket(number);
  return ticketEvents(h.hg.ctx, ticket!._id);
}

function applied(list: TicketEvent[]): string[] {
  return list.filter((e) => e.outcome === 'applied').map((e) => `${e.action}/${e.channel}`);
}

/** Ada writes; resolves with First Line's two notifications once the ticket exists. */
async function newRequest(h: TestHelpgate, subject: string, text: string): Promise<{ number: number; request: string; notices: CapturedMail[] }> {
  const sent = await h.send({ from: FROM_ADA, to: HELPDESK, subject, text });
  const notices = [];
  for (const member of FIRST_LINE) notices.push(await mailTo(h, member, sent.messageId, `the notification to ${member}`));
  const number = Number(/\[CIE#(\d+)\]/.exec(notices[0]!.parsed.subject)![1]);
  return { number, request: sent.messageId, notices };
}

test('the whole GGUS path by mail: First Line assigns, Technical Support takes, answers and solves; closed after 10 working days', async (t) => {
  const { h, clock } = await start(t);
  const { number, notices } = await newRequest(h, 'Cannot upload DICOM', 'The upload stops at 50%.');
  const flNotice = notices[0]!;
  t.regex(flNotice.parsed.text, /\/assign <unit>/, 'the notification tells agents the commands');

  // First Line assigns it to Technical Support by replying to the notification.
  await h.send(clientReply(flNotice, { from: FROM_FL, text: '/assign technical\nPlease check the upload node.\n' }));
  const assigned = await mailWith(h, TST_AGENT, 'was assigned to Technical Support', number);
  t.true(assigned.parsed.text.includes('Please check the upload node.'), 'the new unit reads why');
  t.regex(assigned.parsed.replyTo[0]!.address, new RegExp(`^help\\+${number}-[a-z2-7]{20}@helpdesk\\.localhost$`));
  await mailWith(h, FL_BACKUP, 'has moved from First Line Support to Technical Support', number);
  await mailWith(h, ADA, 'passed to Technical Support', number);
  let ticket = (await h.ticket(number))!;
  t.is(ticket.su, 'technical');
  t.is(ticket.state, 'assigned');
  t.deepEqual(ticket.unitsSeen, ['first-line', 'technical']);

  // Technical Support takes it, then answers publicly.
  await h.send(clientReply(assigned, { from: FROM_TST, text: '/take\n' }));
  await quiet(h);
  ticket = (await h.ticket(number))!;
  t.is(ticket.state, 'in progress');
  t.is(ticket.assignee?.address, TST_AGENT);
  t.is(ticket.firstResponseAt, null, 'taking a ticket is not an answer');
  await h.send(clientReply(assigned, { from: FROM_TST, text: 'Please retry with a chunk size of 5 MB.\n\nTom\n\n-- \nTom Tech, EUCAIM Technical Support\n' }));
  const answer = await mailWith(h, ADA, 'Please retry with a chunk size of 5 MB.', number);
  t.false(answer.parsed.text.includes('Tom Tech, EUCAIM Technical Support'), 'the signature was cut');
  t.truthy((await h.ticket(number))!.firstResponseAt);

  // Ada answers; Technical Support (not First Line) hears of it.
  const fromAda = await h.send(clientReply(answer, { from: FROM_ADA, text: 'Still stops, now at 80%.\n\nOn Mon, 4 Jan 2027 at 10:00, Tom Tech wrote:\n> Please retry with a chunk size of 5 MB.\n' }));
  const followUp = await mailTo(h, TST_AGENT, fromAda.messageId, 'the follow-up to Technical Support');
  t.true(followUp.parsed.text.includes('Still stops, now at 80%.'));
  const stored = (await h.articles(number)).find((a) => a.messageId === fromAda.messageId)!;
  t.is(stored.text, 'Still stops, now at 80%.', 'the quoted history is not stored as the new text');

  // Solved with a solution: Ada is told how to verify or reopen.
  await h.send(clientReply(followUp, { from: FROM_TST, text: '/solve\nThe upload node had a full disk; it has been cleaned.\n' }));
  const solution = await mailWith(h, ADA, 'The upload node had a full disk; it has been cleaned.', number);
  t.regex(solution.parsed.text, /reply with the single word "verified"/);
  t.regex(solution.parsed.text, new RegExp(`/tickets/${number}/verify`));
  t.false(solution.parsed.text.includes('/solve'), 'commands are removed from what the requester receives');
  t.is((await h.ticket(number))!.state, 'solved');

  // Nine working days: nothing. Ten: closed, once, even with the timers run twice.
  clock.advanceWorkingDays(9);
  await h.hg.timers.runDue();
  t.is((await h.ticket(number))!.state, 'solved');
  clock.advanceWorkingDays(1);
  await h.hg.timers.runDue();
  await h.hg.timers.runDue();
  t.is((await h.ticket(number))!.state, 'closed');
  await mailWith(h, ADA, 'has been closed, 10 working days after its solution', number);
  await quiet(h);

  const log = await events(h, number);
  t.deepEqual(applied(log), ['assign/mail', 'take/mail', 'reply/mail', 'solve/mail', 'close/timer']);
  const assign = log.find((e) => e.action === 'assign')!;
  t.is(assign.actor.address, FL_AGENT);
  t.deepEqual(
    assign.changes.filter((c) => c.field === 'su' || c.field === 'state'),
    [
      { field: 'su', from: 'first-line', to: 'technical' },
      { field: 'state', from: 'new', to: 'assigned' },
    ],
  );
  t.is(h.relay.mails.filter((m) => m.envelope.rcptTo.includes(ADA) && m.parsed.text.includes('has been closed')).length, 1);

  // The operator sees the same audit log.
  const shown = await runCli(['tickets', 'show', String(number)], { env: cliDatabaseEnv(h.db) });
  t.is(shown.code, 0, shown.stderr);
  t.regex(shown.stdout, /state: closed\s+unit: technical\s+priority: less urgent\s+assignee: tst-agent@eucaim\.example\.org/);
  t.regex(shown.stdout, /mail\s+fl-agent@eucaim\.example\.org\s+assign\s+su: first-line → technical; state: new → assigned/);
  t.regex(shown.stdout, /timer\s+Timer\s+close\s+state: solved → closed/);
  t.false(toAda(h).includes('Please check the upload node.'), 'the assignment comment is internal');
});

test('waiting for reply: reminders after 5 and 10 working days, unsolved after 15, each once; an answer while waiting moves it to in progress', async (t) => {
  const { h, clock } = await start(t);
  const first = await newRequest(h, 'Access to the catalogue', 'I cannot see the catalogue.');
  await h.send(clientReply(first.notices[0]!, { from: FROM_FL, text: '/waiting\nWhich project are you in?\n' }));
  const question = await mailWith(h, ADA, 'Which project are you in?', first.number);
  t.regex(question.parsed.from?.name ?? '', /Fiona Line/, 'the question comes from the agent, via the helpdesk');
  t.is((await h.ticket(first.number))!.state, 'waiting for reply');

  const remindersTo = () => h.relay.mails.filter((m) => m.envelope.rcptTo.includes(ADA) && m.parsed.text.includes('Reminder: we asked you'));
  clock.advanceWorkingDays(4.9);
  await h.hg.timers.runDue();
  await quiet(h);
  t.is(remindersTo().length, 0);
  clock.advanceWorkingDays(0.2);
  await Promise.all([h.hg.timers.runDue(), h.hg.timers.runDue()]);
  await mailWith(h, ADA, '5 working days ago', first.number);
  clock.advanceWorkingDays(5);
  await h.hg.timers.runDue();
  await mailWith(h, ADA, '10 working days ago', first.number);
  t.is((await h.ticket(first.number))!.state, 'waiting for reply');
  clock.advanceWorkingDays(5);
  await h.hg.timers.runDue();
  await h.hg.timers.runDue();
  t.is((await h.ticket(first.number))!.state, 'unsolved');
  await mailWith(h, FL_AGENT, 'is unsolved: the requester did not reply', first.number);
  await mailWith(h, ADA, 'is now unsolved', first.number);
  await quiet(h);
  t.is(remindersTo().length, 2, 'two reminders, each once');
  t.deepEqual(applied(await events(h, first.number)), ['waiting/mail', 'reminder 1/timer', 'reminder 2/timer', 'unsolved/timer']);

  // A second ticket: Ada answers while it waits → in progress, and First Line hears of it.
  const second = await newRequest(h, 'Dashboard empty', 'The dashboard shows nothing.');
  await h.send(clientReply(second.notices[0]!, { from: FROM_FL, text: '/waiting\nSince when?\n' }));
  const ask = await mailWith(h, ADA, 'Since when?', second.number);
  const answer = await h.send(clientReply(ask, { from: FROM_ADA, text: 'Since Monday.' }));
  await mailTo(h, FL_AGENT, answer.messageId, 'the answer to First Line');
  t.is((await h.ticket(second.number))!.state, 'in progress');
  // The reminders of that wait never come.
  clock.advanceWorkingDays(16);
  await h.hg.timers.runDue();
  await quiet(h);
  t.is((await h.ticket(second.number))!.state, 'in progress');
  t.false(h.relay.mails.some((m) => m.parsed.subject.includes(`[CIE#${second.number}]`) && m.parsed.text.includes('Reminder: we asked you')));
});

test('after the solution: a reply within the window reopens, "verified" verifies and closes, a reply after closing opens a new ticket that names the old one', async (t) => {
  const { h, clock } = await start(t);
  const solve = async (number: number, notice: CapturedMail, text: string) => {
    await h.send(clientReply(notice, { from: FROM_FL, text: `/solve\n${text}\n` }));
    return mailWith(h, ADA, text, number);
  };

  // Reopen within the window.
  const a = await newRequest(h, 'Quota', 'My quota is full.');
  const solutionA = await solve(a.number, a.notices[0]!, 'Your quota was raised to 2 TB.');
  clock.advanceWorkingDays(3);
  const again = await h.send(clientReply(solutionA, { from: FROM_ADA, text: 'It is still full.' }));
  await mailTo(h, FL_AGENT, again.messageId, 'the reopening reply to First Line');
  t.is((await h.ticket(a.number))!.state, 'reopened');

  // "verified" (with the quote below it) → verified, then closed at once.
  const b = await newRequest(h, 'Password reset', 'I forgot my password.');
  const solutionB = await solve(b.number, b.notices[0]!, 'Use the reset link on the login page.');
  await h.send(clientReply(solutionB, { from: FROM_ADA, text: 'Verified!\n\nOn Mon, 4 Jan 2027 at 11:00, Helpdesk wrote:\n> Use the reset link on the login page.\n' }));
  await mailWith(h, FL_AGENT, 'confirmed the solution', b.number);
  t.is((await h.ticket(b.number))!.state, 'closed');
  t.deepEqual(applied(await events(h, b.number)).slice(-2), ['verify/mail', 'close/system']);

  // After the window the solved ticket is closed; a reply then opens a new ticket.
  const c = await newRequest(h, 'VPN', 'The VPN drops.');
  const solutionC = await solve(c.number, c.notices[0]!, 'Update the VPN client.');
  clock.advanceWorkingDays(10);
  await h.hg.timers.runDue();
  t.is((await h.ticket(c.number))!.state, 'closed');
  const late = await h.send(clientReply(solutionC, { from: FROM_ADA, text: 'The VPN drops again.' }));
  const notice = await mailTo(h, FL_AGENT, late.messageId, 'the notification of the new ticket');
  const newNumber = Number(/\[CIE#(\d+)\]/.exec(notice.parsed.subject)![1]);
  t.not(newNumber, c.number);
  t.true(notice.parsed.text.includes(`this is a reply to ticket [CIE#${c.number}]`));
  t.is((await h.ticket(newNumber))!.previousTicket, c.number);
  t.is((await h.ticket(c.number))!.state, 'closed');
  await mailTo(h, ADA, late.messageId, 'the acknowledgement of the new ticket');

  // An out-of-office reply never changes a state.
  const d = await newRequest(h, 'Billing', 'Who pays?');
  await h.send(clientReply(d.notices[0]!, { from: FROM_FL, text: '/waiting\nWhich institute?\n' }));
  const question = await mailWith(h, ADA, 'Which institute?', d.number);
  await h.send({ ...clientReply(question, { from: FROM_ADA, text: 'I am out of office until Monday.' }), headers: { 'Auto-Submitted': 'auto-replied' } });
  await quiet(h);
  t.is((await h.ticket(d.number))!.state, 'waiting for reply');
});

test('security by mail: commands without a valid token for this agent and ticket are kept as an unverified internal note; nothing reaches the requester', async (t) => {
  const { h } = await start(t);
  const one = await newRequest(h, 'Secret project', 'Please help.');
  const two = await newRequest(h, 'Other ticket', 'Another question.');
  const flNoticeOne = one.notices[0]!;
  const backupNoticeOne = one.notices[1]!;
  const flNoticeTwo = two.notices[0]!;
  const attempts: { what: string; mail: Parameters<TestHelpgate['send']>[0] }[] = [
    // Tom is an agent, but this is Fiona's reply address: a spoofed From on a forwarded notification.
    { what: 'spoofed From', mail: clientReply(flNoticeOne, { from: FROM_TST, text: '/close\nClosing this.', cc: 'eve@evil.example' }) },
    // No reply address at all: straight to help@ with the tag.
    { what: 'no token', mail: { from: FROM_FL, to: HELPDESK, subject: `Re: [CIE#${one.number}] Secret project`, text: '/solve\nSolved without a token.' } },
    // Fiona writing to her colleague's reply address.
    { what: "another agent's token", mail: clientReply(backupNoticeOne, { from: FROM_FL, text: '/priority top priority\nWith a borrowed token.' }) },
    // Fiona's token of ticket two, used on ticket one (tag and thread of ticket one).
    {
      what: 'a token for another ticket',
      mail: { ...clientReply(flNoticeOne, { from: FROM_FL, text: '/waiting\nToken of another ticket.' }), to: flNoticeTwo.parsed.replyTo[0]!.address },
    },
  ];
  for (const a of attempts) {
    const sent = await h.send(a.mail);
    await quiet(h);
    const article = await h.hg.store.models.Article.findOne({ messageId: sent.messageId }).lean<Article>();
    t.truthy(article, `${a.what}: the mail is kept`);
    t.is(article!.ticketNumber, one.number, `${a.what}: on the ticket it names`);
    t.true(article!.internal, `${a.what}: as an internal note`);
    t.is(article!.flag, 'unverified commands ignored', a.what);
  }
  const ticket = (await h.ticket(one.number))!;
  t.is(ticket.state, 'new');
  t.deepEqual(ticket.participants, [], 'an unverified mail brings nobody into the ticket');
  t.is(ticket.priority, 'less urgent');
  t.deepEqual(applied(await events(h, one.number)), []);
  // The unit is told, each time; the requester hears nothing but her acknowledgements.
  await mailWith(h, FL_BACKUP, 'its commands were ignored and nothing was sent to the requester', one.number);
  const toRequester = toAda(h);
  for (const secret of ['Closing this.', 'Solved without a token.', 'With a borrowed token.', 'Token of another ticket.']) t.false(toRequester.includes(secret), secret);
  t.deepEqual(
    h.relay.to(ADA).map((m) => m.header('auto-submitted')),
    ['auto-replied', 'auto-replied'],
    'only the two acknowledgements reached Ada',
  );

  // A plain reply without a token does not reach her either.
  await h.send({ from: FROM_FL, to: HELPDESK, subject: `Re: [CIE#${one.number}] Secret project`, text: 'A reply sent to help@ directly.' });
  await quiet(h);
  t.false(toAda(h).includes('A reply sent to help@ directly.'));

  // An internal note with a valid token: the unit reads it, the requester never does.
  await h.send(clientReply(flNoticeOne, { from: FROM_FL, text: '/note\nThe requester is in the pilot group.' }));
  const note = await mailWith(h, FL_BACKUP, 'The requester is in the pilot group.', one.number);
  t.regex(note.parsed.text, /Internal note/);
  await quiet(h);
  t.false(toAda(h).includes('pilot group'));
  t.false(h.relay.mails.some((m) => m.envelope.rcptTo.includes(FL_AGENT) && m.parsed.text.includes('pilot group')), 'the author is not sent their own note');

  // A plain reply whose HTML quotes the note: only its new text is kept and sent.
  const quoting = await h.send({
    ...clientReply(flNoticeOne, { from: FROM_FL, text: 'We are looking into it.' }),
    html: '<p>We are looking into it.</p><blockquote>Internal note: The requester is in the pilot group.</blockquote>',
  });
  await mailWith(h, ADA, 'We are looking into it.', one.number);
  await quiet(h);
  const quotingArticle = await h.hg.store.models.Article.findOne({ messageId: quoting.messageId }).lean<Article>();
  t.is(quotingArticle!.html, null, "an agent's HTML (which quotes our notification) is not kept");
  t.false(toAda(h).includes('pilot group'));

  // An unknown command, and one not allowed: nothing changes, the agent is told why.
  await h.send(clientReply(flNoticeOne, { from: FROM_FL, text: '/escalate now\nPlease hurry.' }));
  const why = await mailWith(h, FL_AGENT, 'unknown command "/escalate"', one.number);
  t.regex(why.parsed.text, /Nothing was changed and nothing was sent to the requester/);
  await h.send(clientReply(flNoticeOne, { from: FROM_FL, text: '/assign nowhere\n' }));
  await mailWith(h, FL_AGENT, 'there is no unit "nowhere"', one.number);
  await h.send(clientReply(flNoticeOne, { from: FROM_FL, text: '/take\n/reopen\nBoth at once.' }));
  await mailWith(h, FL_AGENT, 'only a solved or unsolved ticket can be reopened', one.number);
  await quiet(h);
  t.is((await h.ticket(one.number))!.assignee, null, 'a refused mail changes nothing, not even its first command');
  t.false(toAda(h).includes('Please hurry.') || toAda(h).includes('Both at once.'));
});

test('concurrent assignment from the web and by mail at the same instant: one wins, the other is told, the audit log has both', async (t) => {
  const { h } = await start(t);
  const { number, notices } = await newRequest(h, 'Race', 'Who takes this?');
  const ticket = (await h.ticket(number))!;
  // Fiona assigns by mail while her colleague assigns on the portal, to the same unit.
  // The web action fires as soon as the mail is stored, while its ingest starts: both act on version 0.
  const webResult = await h.send(clientReply(notices[0]!, { from: FROM_FL, text: '/assign technical\n' })).then(() =>
    agentAction(h.hg.ctx, ticket, { kind: 'assign', su: 'technical' }, { actor: { address: FL_BACKUP, name: 'Bo Backup', sub: null, role: 'agent' }, channel: 'web', op: 'web:race' }),
  );
  await quiet(h);
  const log = await events(h, number);
  const assigns = log.filter((e) => e.action === 'assign');
  t.is(assigns.length, 2, 'both attempts are in the audit log');
  t.deepEqual(assigns.map((e) => e.outcome).sort(), ['applied', 'refused']);
  const refused = assigns.find((e) => e.outcome === 'refused')!;
  t.regex(refused.reason!, /already assigned/);
  const winner = assigns.find((e) => e.outcome === 'applied')!;
  if (winner.channel === 'web') {
    t.true(webResult!.ok);
    const told = await mailWith(h, FL_AGENT, 'Refused: /assign: already assigned', number);
    t.regex(told.parsed.text, /Bo Backup|fl-backup/);
  } else {
    t.false(webResult!.ok);
    t.regex((webResult as { reason: string }).reason, /already assigned/);
  }
  const fresh = (await currentTicket(h.hg.ctx, ticket._id)) as Ticket;
  t.is(fresh.su, 'technical');
  t.is(fresh.version, 1, 'one transition applied');
});

test('an agent mail processed again after a crash replays its commands: no false refusal, nothing twice', async (t) => {
  const { h } = await start(t);
  const { number, notices } = await newRequest(h, 'Replay', 'Please look.');
  const sent = await h.send(clientReply(notices[0]!, { from: FROM_FL, text: '/take\n/waiting\nWhich dataset?\n' }));
  await mailWith(h, ADA, 'Which dataset?', number);
  await quiet(h);
  // The same stored mail is run again, as after a crash before its last step.
  const stored = (await h.hg.store.models.Article.findOne({ messageId: sent.messageId }).lean<Article>())!;
  const item = (await h.inbox()).find((i) => String(i._id) === String(stored.inboxId))!;
  await retryInboxItem(h.hg.ctx, String(item._id));
  h.hg.ingest.kick();
  await until(async () => (await h.inbox()).every((i) => i.state !== 'pending'), { what: 'the re-run', timeoutMs: 60_000 });
  await quiet(h);
  const log = await events(h, number);
  t.deepEqual(applied(log), ['take/mail', 'waiting/mail']);
  t.deepEqual(log.filter((e) => e.outcome === 'refused'), []);
  t.is(h.relay.mails.filter((m) => m.envelope.rcptTo.includes(ADA) && m.parsed.text.includes('Which dataset?')).length, 1);
  t.false(h.relay.mails.some((m) => m.envelope.rcptTo.includes(FL_AGENT) && m.parsed.text.includes('was not carried out')));
});

test('a higher priority brings the first-response target forward: the escalation comes at the new time, once, to the unit and to First Line', async (t) => {
  const { h, clock } = await start(t);
  const { number, notices } = await newRequest(h, 'Urgent outage', 'Nothing works.');
  await h.send(clientReply(notices[0]!, { from: FROM_FL, text: '/assign technical\n/priority top priority\n' }));
  await mailWith(h, TST_AGENT, 'was assigned to Technical Support', number);
  await quiet(h);
  const ticket = (await h.ticket(number))!;
  t.is(ticket.priority, 'top priority');
  t.is(new Date(ticket.slaDue!).toISOString(), addWorkingDays(new Date(ticket.createdAt), 0.25).toISOString());
  clock.advanceWorkingDays(0.3);
  await Promise.all([h.hg.timers.runDue(), h.hg.timers.runDue()]);
  const breach = await mailWith(h, TST_AGENT, 'SLA breached', number);
  t.regex(breach.parsed.text, /top priority\) has had no first response within 0\.25 working days/);
  await mailWith(h, FL_AGENT, 'SLA breached', number);
  // The old, later target passes too: nothing more.
  clock.advanceWorkingDays(2);
  await h.hg.timers.runDue();
  await quiet(h);
  t.is(h.relay.mails.filter((m) => m.parsed.text.includes('SLA breached')).length, 1 + FIRST_LINE.length);
  t.deepEqual(applied(await events(h, number)).filter((a) => a.startsWith('escalate')), ['escalate/timer']);
});
