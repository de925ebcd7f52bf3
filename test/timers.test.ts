import test from 'ava';
import type { TicketEvent } from '../src/db/models/engine.ts';
import { agentAction } from '../src/domain/engine/actions.ts';
import { addWorkingDays } from '../src/domain/engine/calendar.ts';
import { createTicket } from '../src/domain/tickets.ts';
import { CaptureSmtp } from './helpers/capture-smtp.ts';
import { startTestDatabase } from './helpers/database.ts';
import { FIRST_LINE, startTestHelpgate } from './helpers/helpgate.ts';

const TICKETS = 200;

test('two helpgates on one database run the timers of 200 tickets: every reminder, escalation, unsolved and close happens exactly once', async (t) => {
  t.timeout(600_000);
  const started = Date.now();
  const db = await startTestDatabase({ own: true });
  t.teardown(() => db.cleanup());
  const relay = await new CaptureSmtp().listen();
  t.teardown(() => relay.close());
  let now = new Date('2027-01-04T09:00:00Z');
  const clock = () => new Date(now);
  // Outbound mail is queued, not sent: this test counts what the timers queue, once each.
  const env = { OUTBOX_HOLD: 'true' };
  const a = await startTestHelpgate(t, { db, relay, now: clock, env });
  const b = await startTestHelpgate(t, { db, relay, now: clock, env });
  const ctx = a.hg.ctx;
  const fl = { address: FIRST_LINE[0]!, name: 'Fiona Line', sub: null, role: 'agent' as const };

  // A third of the tickets wait for their requester, a third are solved, a third get no answer.
  const groups: Record<'waiting' | 'solved' | 'silent', number[]> = { waiting: [], solved: [], silent: [] };
  const setUp = async (i: number) => {
    const { ticket } = await createTicket(ctx, { originKey: `timers:${i}`, subject: `Ticket ${i}`, requester: { address: `user${i}@uni.example`, name: '' }, participants: [], su: 'first-line' });
    const group = i % 3 === 0 ? 'waiting' : i % 3 === 1 ? 'solved' : 'silent';
    if (group !== 'silent') await agentAction(ctx, ticket, { kind: group === 'waiting' ? 'waiting' : 'solve' }, { actor: fl, channel: 'web', op: `setup:${i}` });
    groups[group].push(ticket.number);
  };
  // Four at a time.
  for (let i = 0; i < TICKETS; i += 4) await Promise.all([0, 1, 2, 3].filter((k) => i + k < TICKETS).map((k) => setUp(i + k)));
  t.log(`set-up of ${TICKETS} tickets: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const { Job, TicketEvent, Outbox } = a.hg.store.models;
  const jobsAtStart = await Job.countDocuments({});
  t.is(jobsAtStart, TICKETS + groups.waiting.length * 3 + groups.solved.length, 'one SLA timer per ticket, three per wait, one per solution');

  // Both processes run what is due, at once, at each step of the clock.
  // (Their own timer loops run too, now and then: every run counts.)
  const runBoth = async () => {
    for (;;) {
      const [x, y] = await Promise.all([a.hg.timers.runDue(), b.hg.timers.runDue()]);
      if (x.due === 0 && y.due === 0) return;
    }
  };
  for (const days of [2.1, 5, 5, 5]) {
    now = addWorkingDays(now, days);
    const t0 = Date.now();
    await runBoth();
    t.log(`+${days} working days: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  t.is(await Job.countDocuments({}), 0, 'every timer ran and is gone');
  const [ranByA, ranByB] = [a.hg.timers.ran(), b.hg.timers.ran()];
  t.is(ranByA + ranByB, jobsAtStart, `each timer ran once (A ran ${ranByA}, B ran ${ranByB})`);
  t.log(`timers run by A: ${ranByA}, by B: ${ranByB}`);

  const events = await TicketEvent.find({ outcome: 'applied', channel: 'timer' }).lean<TicketEvent[]>();
  const count = (number: number, action: string) => events.filter((e) => e.ticketNumber === number && e.action === action).length;
  for (const n of groups.waiting) {
    t.deepEqual([count(n, 'reminder 1'), count(n, 'reminder 2'), count(n, 'unsolved'), count(n, 'escalate')], [1, 1, 1, 0], `waiting ticket ${n}`);
  }
  for (const n of groups.solved) t.deepEqual([count(n, 'close'), count(n, 'escalate')], [1, 0], `solved ticket ${n}`);
  for (const n of groups.silent) t.is(count(n, 'escalate'), 1, `unanswered ticket ${n}`);
  t.is(events.length, groups.waiting.length * 3 + groups.solved.length + groups.silent.length, 'nothing else happened');

  // One mail per event and recipient: the outbox holds each once.
  const mails = await Outbox.find({ kind: { $in: ['reminder-1', 'reminder-2', 'unsolved', 'closed', 'sla-breach'] } }, { kind: 1, ticketNumber: 1, to: 1 }).lean<{ kind: string; ticketNumber: number; to: string[] }[]>();
  const keys = mails.map((m) => `${m.ticketNumber}:${m.kind}:${m.to.join(',')}`);
  t.is(new Set(keys).size, keys.length, 'no mail twice');
  const ofKind = (kind: string) => mails.filter((m) => m.kind === kind).length;
  t.is(ofKind('reminder-1'), groups.waiting.length);
  t.is(ofKind('reminder-2'), groups.waiting.length);
  // Unsolved: the requester, and each First Line member.
  t.is(ofKind('unsolved'), groups.waiting.length * (1 + FIRST_LINE.length));
  t.is(ofKind('closed'), groups.solved.length);
  t.is(ofKind('sla-breach'), groups.silent.length * FIRST_LINE.length);

  // The states are where the timers left them.
  const states = await a.hg.store.models.Ticket.find({}, { number: 1, state: 1, slaEscalatedAt: 1 }).lean<{ number: number; state: string; slaEscalatedAt: Date | null }[]>();
  const stateOf = new Map(states.map((s) => [s.number, s]));
  t.true(groups.waiting.every((n) => stateOf.get(n)!.state === 'unsolved'));
  t.true(groups.solved.every((n) => stateOf.get(n)!.state === 'closed'));
  t.true(groups.silent.every((n) => stateOf.get(n)!.state === 'new' && stateOf.get(n)!.slaEscalatedAt));
});

test('a timer that fell due while helpgate was down runs when it starts', async (t) => {
  const db = await startTestDatabase({ own: true });
  t.teardown(() => db.cleanup());
  let now = new Date('2027-01-04T09:00:00Z');
  const clock = () => new Date(now);
  const first = await startTestHelpgate(null, { db, now: clock });
  const { ticket } = await createTicket(first.hg.ctx, { originKey: 'down:1', subject: 'Down', requester: { address: 'u@uni.example', name: '' }, participants: [], su: 'first-line' });
  await agentAction(first.hg.ctx, ticket, { kind: 'solve' }, { actor: { address: FIRST_LINE[0]!, name: '', sub: null, role: 'agent' }, channel: 'web', op: 'down:solve' });
  await first.stop();
  // Eleven working days pass with no helpgate running.
  now = addWorkingDays(now, 11);
  const second = await startTestHelpgate(t, { db, now: clock });
  // The start-up pass of the timer loop runs it, with no call from the test.
  const deadline = Date.now() + 60_000;
  while ((await second.ticket(ticket.number))!.state !== 'closed') {
    if (Date.now() > deadline) throw new Error('the missed timer did not run at start-up');
    await new Promise((r) => setTimeout(r, 200));
  }
  t.pass();
});
