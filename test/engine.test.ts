import path from 'node:path';
import test from 'ava';
import { loadConfig, projectRoot } from '../src/config/load.ts';
import type { TicketEvent } from '../src/db/models/engine.ts';
import { openStore, type Store } from '../src/db/store.ts';
import { createDomainContext, type DomainContext } from '../src/domain/context.ts';
import { agentAction } from '../src/domain/engine/actions.ts';
import { addWorkingDays, workingDaysBetween } from '../src/domain/engine/calendar.ts';
import { parseAgentMail } from '../src/domain/engine/commands.ts';
import { splitCommandLines } from '../src/mail/parse/read.ts';
import { isValidReplyToken, replyAddressFor, replyTokensIn } from '../src/domain/engine/reply-tokens.ts';
import { currentTicket, ticketEvents, transition } from '../src/domain/engine/transition.ts';
import { createTicket } from '../src/domain/tickets.ts';
import { createLogger } from '../src/log/logger.ts';
import { MailComposer } from '../src/mail/send/compose.ts';
import { startTestDatabase, type TestDatabase } from './helpers/database.ts';

let db: TestDatabase;
const stores: Store[] = [];
test.before(async () => {
  db = await startTestDatabase();
});
test.after.always(async () => {
  for (const s of stores) await s.close();
  await db.cleanup();
});

/** Domain contexts on separate connections, as separate helpgate processes have. */
async function contexts(n: number): Promise<DomainContext[]> {
  const config = loadConfig({ LOG_LEVEL: 'silent' });
  const out = [];
  for (let i = 0; i < n; i++) {
    const store = await openStore(db.uri, { dbName: db.dbName });
    stores.push(store);
    out.push(createDomainContext({ store, config, log: createLogger('silent'), composer: new MailComposer(path.join(projectRoot, 'templates')) }));
  }
  return out;
}

const agent = (address: string, name = '') => ({ address, name, sub: null, role: 'agent' as const });

test('working days skip weekends, in both directions', (t) => {
  const friday = new Date('2027-01-08T15:00:00Z');
  t.is(addWorkingDays(friday, 1).toISOString(), '2027-01-11T15:00:00.000Z', 'Friday + 1 = Monday');
  t.is(addWorkingDays(friday, 5).toISOString(), '2027-01-15T15:00:00.000Z');
  t.is(addWorkingDays(new Date('2027-01-09T12:00:00Z'), 0.5).toISOString(), '2027-01-11T12:00:00.000Z', 'a start on Saturday counts from Monday 00:00');
  t.is(addWorkingDays(friday, 10).toISOString(), '2027-01-22T15:00:00.000Z');
  t.is(workingDaysBetween(friday, new Date('2027-01-11T15:00:00Z')), 1);
  t.is(workingDaysBetween(new Date('2027-01-11T15:00:00Z'), friday), -1);
});

test('agent commands: read at the top only; unknown commands, units and priorities are named', (t) => {
  const units = ['first-line', 'technical'];
  const m = parseAgentMail(splitCommandLines('\n/take\n/priority Very-Urgent\n\nI am on it.\n/close\n'), units);
  t.deepEqual(
    m.commands.map((c) => c.action),
    [{ kind: 'take' }, { kind: 'priority', priority: 'very urgent' }],
  );
  t.is(m.rest, 'I am on it.\n/close', 'a command after the text is text');
  t.false(m.internal);
  t.true(parseAgentMail(splitCommandLines('/note\nfor us'), units).internal);
  t.true(parseAgentMail(splitCommandLines('/assign technical\nplease look'), units).internal, 'the comment of an assignment goes to the units');
  t.regex(parseAgentMail(splitCommandLines('/assign nowhere'), units).commands[0]!.error!, /no unit "nowhere".*first-line, technical/);
  t.regex(parseAgentMail(splitCommandLines('/priority soonish'), units).commands[0]!.error!, /less urgent, urgent, very urgent, top priority/);
  t.regex(parseAgentMail(splitCommandLines('/frobnicate'), units).commands[0]!.error!, /unknown command "\/frobnicate"/);
  t.regex(parseAgentMail(splitCommandLines('/take me'), units).commands[0]!.error!, /takes no argument/);
  t.deepEqual(parseAgentMail(splitCommandLines('Hello\n/take'), units).commands, []);
});

test('reply tokens bind one agent to one ticket', async (t) => {
  const [ctx] = await contexts(1);
  const { ticket: a } = await createTicket(ctx!, { originKey: 'mid:<tok-a@x>', subject: 'a', requester: { address: 'r@x.org', name: '' }, participants: [], su: 'first-line' });
  const { ticket: b } = await createTicket(ctx!, { originKey: 'mid:<tok-b@x>', subject: 'b', requester: { address: 'r@x.org', name: '' }, participants: [], su: 'first-line' });
  const address = await replyAddressFor(ctx!, a, 'fl-agent@eucaim.example.org');
  const [token] = replyTokensIn(ctx!, [address.toUpperCase(), 'help@helpdesk.localhost', 'other+1-aaaaaaaaaaaaaaaaaaaa@helpdesk.localhost']);
  t.is(token!.number, a.number);
  t.true(await isValidReplyToken(ctx!, a, 'FL-Agent@eucaim.example.org', token!.token));
  t.false(await isValidReplyToken(ctx!, a, 'tst-agent@eucaim.example.org', token!.token), 'another agent');
  t.false(await isValidReplyToken(ctx!, b, 'fl-agent@eucaim.example.org', token!.token), 'another ticket');
  // Its last character changed (to another letter: one in 32 tokens ends in "a" already).
  const changed = `${token!.token.slice(0, 19)}${token!.token.endsWith('a') ? 'b' : 'a'}`;
  t.false(await isValidReplyToken(ctx!, a, 'fl-agent@eucaim.example.org', changed), 'a changed token');
  // Every process on the database makes the same addresses (the key is stored once).
  const [other] = await contexts(1);
  t.is(await replyAddressFor(other!, a, 'fl-agent@eucaim.example.org'), address);
});

test('concurrent transitions from separate connections: exactly one wins, every other is refused with who won, all are logged', async (t) => {
  const ctxs = await contexts(4);
  const { ticket } = await createTicket(ctxs[0]!, { originKey: 'mid:<race@x>', subject: 'race', requester: { address: 'r@x.org', name: '' }, participants: [], su: 'first-line' });
  const targets = ['technical', 'catalogue', 'dashboard', 'etl', 'reference-nodes', 'federated-search', 'technical', 'catalogue'];
  const results = await Promise.all(
    targets.map((su, i) => agentAction(ctxs[i % ctxs.length]!, ticket, { kind: 'assign', su }, { actor: agent('fl-agent@eucaim.example.org', `Agent ${i}`), channel: i % 2 ? 'web' : 'mail', op: `race:${i}`, expectedVersion: 0 })),
  );
  const won = results.filter((r) => r?.ok);
  t.is(won.length, 1);
  for (const r of results.filter((x) => x && !x.ok)) t.regex((r as { reason: string }).reason, /already assigned.*by Agent \d|changed meanwhile/);
  const log = await ticketEvents(ctxs[0]!, ticket._id);
  t.is(log.filter((e) => e.outcome === 'applied').length, 1);
  t.is(log.filter((e) => e.outcome === 'refused').length, targets.length - 1);
  const fresh = await currentTicket(ctxs[1]!, ticket._id);
  t.is(fresh!.su, (won[0] as { ticket: { su: string } }).ticket.su);
  t.is(fresh!.version, 1);
});

test('a transition whose ticket write was lost is replayed from its event; the same operation again is applied once', async (t) => {
  const [ctx] = await contexts(1);
  const { ticket } = await createTicket(ctx!, { originKey: 'mid:<replay@x>', subject: 'replay', requester: { address: 'r@x.org', name: '' }, participants: [], su: 'first-line' });
  const spec = {
    action: 'hold',
    op: 'op:replay',
    actor: agent('fl-agent@eucaim.example.org'),
    channel: 'mail' as const,
    check: () => null,
    change: () => ({ state: 'on hold' as const }),
    onConflict: 'refuse' as const,
  };
  const first = await transition(ctx!, ticket._id, spec);
  t.true(first.ok && first.fresh);
  // An older copy of the ticket is written back (a crash before the write, or a concurrent
  // whole-document write that lost the race): the event is still there.
  await ctx!.store.models.Ticket.updateOne({ _id: ticket._id }, { $set: { state: 'new', version: 0, recentOps: [] } });
  const healed = await currentTicket(ctx!, ticket._id);
  t.is(healed!.state, 'on hold');
  t.is(healed!.version, 1);
  t.is((await ctx!.store.models.Ticket.findById(ticket._id).lean<{ state: string }>())!.state, 'on hold', 'the replay is written back');
  const again = await transition(ctx!, ticket._id, spec);
  t.true(again.ok);
  t.false((again as { fresh: boolean }).fresh, 're-running the same operation applies nothing');
  const events = await ctx!.store.models.TicketEvent.find({ ticketId: ticket._id }).lean<TicketEvent[]>();
  t.is(events.length, 1);
});
