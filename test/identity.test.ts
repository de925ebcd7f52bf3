import test, { type ExecutionContext } from 'ava';
import type { InboxItem } from '../src/db/models/inbox.ts';
import { openStore } from '../src/db/store.ts';
import type { DomainContext } from '../src/domain/context.ts';
import { bindAddress, confirmAddress, requestAddressConfirmation, unbindAddress, userForAddress } from '../src/domain/identity/addresses.ts';
import { expireHeldMail, releaseHeldMail } from '../src/domain/identity/held.ts';
import { currentAup, findUser, hasConsented, isAgent, isAuthorised, recordConsent, signIn } from '../src/domain/identity/users.ts';
import { listOwnTickets } from '../src/domain/ticket-list.ts';
import { InvalidInputError } from '../src/errors/errors.ts';
import type { CapturedMail } from './helpers/capture-smtp.ts';
import { databasePerTest } from './helpers/database-per-test.ts';
import { FIRST_LINE, HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { fixture, quiet } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';

const freshDb = databasePerTest(test);

const DAY = 86_400_000;
const EUCAIM = 'urn:geant:lifescience-ri.eu:group:EUCAIM#aai.lifescience-ri.eu';
const [FL_AGENT] = FIRST_LINE as [string];

/**
 * helpgate's clock: real time moved forward to ten minutes past the next UTC midnight, so a
 * test never straddles a rate-limit day, and moved further on demand (expiry). It runs ahead
 * of the real clock, never behind it, so mail received in real time is due at once.
 */
class TestClock {
  private offset: number;
  constructor() {
    const now = Date.now();
    this.offset = now - (now % DAY) + DAY + 10 * 60_000 - now;
  }
  now = (): Date => new Date(Date.now() + this.offset);
  advance(ms: number): void {
    this.offset += ms;
  }
}

async function startHolding(t: ExecutionContext, clock = new TestClock(), env: Record<string, string> = {}): Promise<TestHelpgate> {
  return startTestHelpgate(t, { db: await freshDb(), env: { UNBOUND_SENDERS: 'hold', ...env }, now: clock.now });
}

/** The same helpgate's domain seen through a second database connection, as a second process has it. */
async function secondConnection(t: ExecutionContext, h: TestHelpgate): Promise<DomainContext> {
  const store = await openStore(h.db.uri, { dbName: h.db.dbName, timeoutMs: 5000 });
  t.teardown(() => store.close());
  return { ...h.hg.ctx, store };
}

function tokenIn(mail: CapturedMail, path: string): string {
  const m = new RegExp(`${path.replace(/[?/]/g, '\\$&')}\\?token=([A-Za-z0-9_-]+)`).exec(mail.parsed.text);
  if (!m) throw new Error(`no ${path} link in "${mail.parsed.subject}"`);
  return m[1]!;
}

function heldItems(h: TestHelpgate): Promise<InboxItem[]> {
  return h.hg.store.models.Inbox.find({ state: 'held' }).sort({ receivedAt: 1 }).lean<InboxItem[]>();
}

test('sign-in binds a verified e-mail claim, never an unverified one, and records roles and consent', async (t) => {
  const h = await startHolding(t);
  const ctx = h.hg.ctx;

  const ada = await signIn(ctx, {
    sub: 'ada-4711@lifescience-ri.eu',
    name: 'Ada Researcher',
    email: 'Ada@Uni.example',
    email_verified: true,
    eduperson_entitlement: EUCAIM,
    voperson_external_affiliation: ['member@uni.example'],
  });
  t.deepEqual(ada.bound, ['ada@uni.example']);
  t.deepEqual(ada.notBound, []);
  t.is(ada.user._id, 'ada-4711@lifescience-ri.eu');
  t.deepEqual(ada.user.entitlements, [EUCAIM]);
  t.deepEqual(ada.user.addresses.map((a) => [a.address, a.via]), [['ada@uni.example', 'verified-claim']]);
  t.is(await userForAddress(ctx, 'ada@uni.example'), 'ada-4711@lifescience-ri.eu');
  t.true(isAuthorised(ctx, ada.user));
  t.false(isAgent(ctx, ada.user));
  // Signing in again changes nothing about the binding.
  t.deepEqual((await signIn(ctx, { sub: 'ada-4711@lifescience-ri.eu', email: 'ada@uni.example', email_verified: true })).bound, []);

  const bruno = await signIn(ctx, { sub: 'bruno-42@lifescience-ri.eu', email: 'bruno@uni.example', email_verified: false });
  t.deepEqual(bruno.bound, []);
  t.deepEqual(bruno.notBound, [{ address: 'bruno@uni.example', reason: 'unverified' }]);
  t.is(await userForAddress(ctx, 'bruno@uni.example'), null);
  t.false(isAuthorised(ctx, bruno.user), 'no EUCAIM entitlement');

  const mallory = await signIn(ctx, { sub: 'mallory@other-aai', email: 'ada@uni.example', email_verified: true });
  t.deepEqual(mallory.notBound, [{ address: 'ada@uni.example', reason: 'taken' }]);
  t.is(await userForAddress(ctx, 'ada@uni.example'), 'ada-4711@lifescience-ri.eu');

  // A Support Unit member's address makes its holder an agent.
  const fiona = await signIn(ctx, { sub: 'fiona@lifescience-ri.eu', email: FL_AGENT, email_verified: true });
  t.true(isAgent(ctx, fiona.user));

  await t.throwsAsync(() => signIn(ctx, { sub: '' }), { instanceOf: InvalidInputError });
  await t.throwsAsync(() => signIn(ctx, { sub: 42 as unknown as string }), { instanceOf: InvalidInputError });

  const aup = currentAup(ctx);
  t.is(aup.version, '1');
  t.is(aup.title, 'Cancer Image Europe Acceptable Use Policy');
  t.true(aup.text.startsWith('By using the Cancer Image Europe helpdesk'));
  t.false(hasConsented(ada.user, aup.version));
  await recordConsent(ctx, ada.user._id, aup.version, '192.0.2.7');
  const after = (await findUser(ctx, ada.user._id))!;
  t.true(hasConsented(after, aup.version));
  t.is(after.consents[0]!.ip, '192.0.2.7');
});

test('an address is bound to at most one identity, also when two identities race for it from two connections', async (t) => {
  const h = await startHolding(t);
  const one = h.hg.ctx;
  const two = await secondConnection(t, h);
  await signIn(one, { sub: 'ada' });
  await signIn(one, { sub: 'bruno' });

  for (let i = 0; i < 6; i++) {
    const address = `shared-${i}@uni.example`;
    const [a, b] = await Promise.all([bindAddress(one, 'ada', address, 'confirmation-link'), bindAddress(two, 'bruno', address, 'confirmation-link')]);
    t.deepEqual([a, b].sort(), ['bound', 'taken'], address);
    const winner = a === 'bound' ? 'ada' : 'bruno';
    t.is(await userForAddress(one, address), winner);
    t.deepEqual((await findUser(one, winner))!.addresses.map((x) => x.address).includes(address), true);
    t.false((await findUser(one, winner === 'ada' ? 'bruno' : 'ada'))!.addresses.some((x) => x.address === address));
  }

  t.is(await bindAddress(one, 'ada', 'ada-keeps@uni.example', 'confirmation-link'), 'bound');
  t.is(await bindAddress(one, 'ada', 'own@uni.example', 'confirmation-link'), 'bound');
  t.is(await bindAddress(one, 'ada', 'OWN@uni.example', 'confirmation-link'), 'already-yours');
  t.is(await unbindAddress(one, 'bruno', 'own@uni.example'), 'not-yours', 'only the owner unbinds');
  t.is(await unbindAddress(one, 'ada', 'own@uni.example'), 'removed');
  t.false((await findUser(one, 'ada'))!.addresses.some((x) => x.address === 'own@uni.example'));
  t.is(await bindAddress(one, 'bruno', 'own@uni.example', 'confirmation-link'), 'bound');
  t.is(await bindAddress(one, 'bruno', HELPDESK, 'confirmation-link'), 'taken', "the helpdesk's own address");
});

test('a person keeps their last address: removing it is refused, also when the last two are removed at once', async (t) => {
  const h = await startHolding(t);
  const one = h.hg.ctx;
  const two = await secondConnection(t, h);
  await signIn(one, { sub: 'cleo', email: 'cleo@uni.example', email_verified: true });
  t.is(await unbindAddress(one, 'cleo', 'cleo@uni.example'), 'last');
  t.deepEqual((await findUser(one, 'cleo'))!.addresses.map((x) => x.address), ['cleo@uni.example']);
  t.is(await userForAddress(one, 'cleo@uni.example'), 'cleo');

  for (let i = 0; i < 4; i++) {
    const other = `cleo-${i}@uni.example`;
    t.is(await bindAddress(one, 'cleo', other, 'confirmation-link'), 'bound');
    const results = await Promise.all([unbindAddress(one, 'cleo', 'cleo@uni.example'), unbindAddress(two, 'cleo', other)]);
    t.true(results.includes('last'), `round ${i}: one of the two removals is refused (${results.join(', ')})`);
    const left = (await findUser(one, 'cleo'))!.addresses.map((x) => x.address);
    t.true(left.length >= 1, `round ${i}: an address is left`);
    t.is(await userForAddress(one, left[0]!), 'cleo');
    // Back to the first address alone for the next round.
    if (!left.includes('cleo@uni.example')) t.is(await bindAddress(one, 'cleo', 'cleo@uni.example', 'confirmation-link'), 'bound');
    if (left.includes(other)) t.is(await unbindAddress(one, 'cleo', other), 'removed');
  }
});

test('a confirmation link binds an address once, only for the person who asked, and only for a day', async (t) => {
  const clock = new TestClock();
  const h = await startHolding(t, clock);
  const ctx = h.hg.ctx;
  const two = await secondConnection(t, h);
  await signIn(ctx, { sub: 'ada', email: 'ada@uni.example', email_verified: true });
  await signIn(ctx, { sub: 'bruno', email: 'bruno@uni.example', email_verified: true });

  const linkTo = async (address: string) => {
    const mail = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(address) && m.parsed.subject.startsWith('Confirm your address'), `the confirmation mail to ${address}`);
    return { mail, token: tokenIn(mail, 'http://localhost:3000/account/addresses/confirm') };
  };

  t.deepEqual(await requestAddressConfirmation(ctx, 'ada', 'Ada.Home@Example.net'), { sent: true });
  const { mail, token } = await linkTo('ada.home@example.net');
  t.is(mail.parsed.from?.address, HELPDESK);
  t.is(mail.header('auto-submitted'), 'auto-generated');
  t.is(mail.header('x-helpgate-loop'), HELPDESK);
  t.true(mail.parsed.text.includes('ada.home@example.net'));
  t.false(JSON.stringify(await h.hg.store.models.MailToken.find({}).lean()).includes(token), 'only the hash is stored');

  t.deepEqual(await confirmAddress(ctx, 'bruno', token), { ok: false, reason: 'other-user' });
  t.deepEqual(await confirmAddress(ctx, 'ada', 'not-a-token'), { ok: false, reason: 'unknown' });
  t.deepEqual(await confirmAddress(ctx, 'ada', token), { ok: true, address: 'ada.home@example.net' });
  t.deepEqual(await confirmAddress(ctx, 'ada', token), { ok: false, reason: 'used' });
  t.is(await userForAddress(ctx, 'ada.home@example.net'), 'ada');
  t.deepEqual((await findUser(ctx, 'ada'))!.addresses.map((a) => [a.address, a.via]), [
    ['ada@uni.example', 'verified-claim'],
    ['ada.home@example.net', 'confirmation-link'],
  ]);

  // Nothing to confirm for an address already bound, to her or to someone else.
  t.deepEqual(await requestAddressConfirmation(ctx, 'ada', 'ada.home@example.net'), { sent: false, reason: 'already-yours' });
  t.deepEqual(await requestAddressConfirmation(ctx, 'ada', 'bruno@uni.example'), { sent: false, reason: 'taken' });
  await t.throwsAsync(() => requestAddressConfirmation(ctx, 'ada', 'not an address'), { instanceOf: InvalidInputError });

  // One link opened twice at the same moment, through two connections: it works once.
  await requestAddressConfirmation(ctx, 'ada', 'ada.lab@example.net');
  const lab = await linkTo('ada.lab@example.net');
  const both = await Promise.all([confirmAddress(ctx, 'ada', lab.token), confirmAddress(two, 'ada', lab.token)]);
  t.deepEqual(both.map((r) => (r.ok ? 'ok' : r.reason)).sort(), ['ok', 'used']);

  // A link older than a day has expired.
  await requestAddressConfirmation(ctx, 'ada', 'ada.old@example.net');
  const old = await linkTo('ada.old@example.net');
  clock.advance(DAY + 60_000);
  t.deepEqual(await confirmAddress(ctx, 'ada', old.token), { ok: false, reason: 'expired' });
  t.is(await userForAddress(ctx, 'ada.old@example.net'), null);

  // A handful of requests an hour, then no more mail.
  const answers = [];
  for (let i = 0; i < 6; i++) answers.push(await requestAddressConfirmation(ctx, 'bruno', `bruno-${i}@example.net`));
  t.deepEqual(answers.at(-1), { sent: false, reason: 'rate-limited' });
  t.is(answers.filter((a) => a.sent).length, 5);
});

test('mail from an unbound sender is held and answered once; signing in through the link turns it into tickets in arrival order', async (t) => {
  const h = await startHolding(t);
  const ctx = h.hg.ctx;
  const two = await secondConnection(t, h);
  const ADA = 'ada@uni.example';

  const first = await h.send({ from: `Ada Researcher <${ADA}>`, to: HELPDESK, subject: 'Cannot upload DICOM', text: 'The upload stops at 50%.' });
  t.regex(first.response, /^250 /);
  const answer = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(ADA), 'the sign-in answer');
  t.true(answer.parsed.subject.includes('Cannot upload DICOM'));
  t.is(answer.parsed.inReplyTo, first.messageId);
  t.deepEqual(answer.parsed.references, [first.messageId]);
  t.is(answer.parsed.from?.address, HELPDESK);
  t.is(answer.header('auto-submitted'), 'auto-replied');
  t.is(answer.header('x-helpgate-loop'), HELPDESK);
  t.true(answer.parsed.text.includes('This helpdesk answers people who have signed in with LS AAI'));
  t.true(answer.parsed.text.includes('expires in 14 days'));
  const token = tokenIn(answer, 'http://localhost:3000/auth/claim');

  const second = await h.send({ from: `Ada Researcher <${ADA}>`, to: HELPDESK, subject: 'The viewer shows a blank series', text: 'Series 4 is blank.' });
  t.regex(second.response, /^250 /);
  await quiet(h);
  t.deepEqual(await h.tickets(), [], 'no ticket for held mail');
  const held = await heldItems(h);
  t.deepEqual(held.map((i) => [i.state, i.heldAddress]), [
    ['held', ADA],
    ['held', ADA],
  ]);
  t.is(h.relay.to(ADA).length, 1, 'one answer, however many mails');
  for (const member of FIRST_LINE) t.is(h.relay.to(member).length, 0, `nothing reaches ${member}`);

  // Ada signs in through the link; the same link opened twice at once works once.
  const { user } = await signIn(ctx, { sub: 'ada-4711@lifescience-ri.eu', name: 'Ada Researcher', eduperson_entitlement: EUCAIM });
  const results = await Promise.all([releaseHeldMail(ctx, user._id, token), releaseHeldMail(two, user._id, token)]);
  const ok = results.find((r) => r.ok);
  t.deepEqual(ok, { ok: true, address: ADA, released: 2 });
  t.deepEqual(results.find((r) => !r.ok), { ok: false, reason: 'used' });
  t.deepEqual(await releaseHeldMail(ctx, user._id, token), { ok: false, reason: 'used' });
  t.is(await userForAddress(ctx, ADA), user._id);
  t.deepEqual((await findUser(ctx, user._id))!.addresses.map((a) => [a.address, a.via]), [[ADA, 'sign-in-link']]);

  // The released mail goes through ingest again, one mail after the other.
  await until(async () => (await h.tickets()).length === 2, { what: 'the tickets of the released mail' });
  await quiet(h);
  const tickets = await h.tickets();
  t.deepEqual(
    tickets.map((x) => [x.number, x.subject, x.requester.address, x.ownerSub]),
    [
      [100001, 'Cannot upload DICOM', ADA, user._id],
      [100002, 'The viewer shows a blank series', ADA, user._id],
    ],
  );
  t.deepEqual((await h.articles(100001)).map((a) => [a.messageId, a.authorSub]), [[first.messageId, user._id]]);
  t.deepEqual((await listOwnTickets(ctx, user)).items.map((x) => x.number).sort(), [100001, 100002]);
  t.deepEqual((await h.inbox()).map((i) => [i.state, i.ticketNumber]), [
    ['done', 100001],
    ['done', 100002],
  ]);
  // From now on she is an ordinary requester: acknowledged, and First Line is told.
  for (const subject of ['[CIE#100001] Cannot upload DICOM', '[CIE#100002] The viewer shows a blank series']) {
    await h.relay.waitFor((m) => m.envelope.rcptTo.includes(ADA) && m.parsed.subject === subject, `the acknowledgement "${subject}"`);
    await h.relay.waitFor((m) => m.envelope.rcptTo.includes(FL_AGENT) && m.parsed.subject === subject, `the notification "${subject}"`);
  }

  // Her next mail is ticketed at once, as hers.
  const third = await h.send({ from: `Ada Researcher <${ADA}>`, to: HELPDESK, subject: 'Export to NIfTI fails', text: 'The export job ends with an error.' });
  t.regex(third.response, /^250 /);
  await h.relay.waitFor((m) => m.envelope.rcptTo.includes(ADA) && m.parsed.subject === '[CIE#100003] Export to NIfTI fails', 'the acknowledgement of the third mail');
  t.is((await h.ticket(100003))!.ownerSub, user._id);
  t.deepEqual((await listOwnTickets(ctx, user)).items.map((x) => x.number).sort(), [100001, 100002, 100003]);
});

test('held mail is released when its address is bound by a verified sign-in; a reply to it follows its ticket', async (t) => {
  const h = await startHolding(t);
  const EVE = 'eve@uni.example';
  const first = await h.send({ from: EVE, to: HELPDESK, subject: 'Access to the catalogue', text: 'I cannot see any dataset.' });
  const followUp = await h.send({ from: EVE, to: HELPDESK, subject: 'Re: Access to the catalogue', text: 'Still nothing.', inReplyTo: first.messageId, references: [first.messageId] });
  t.regex(followUp.response, /^250 /);
  await quiet(h);
  t.is((await heldItems(h)).length, 2);

  const { bound } = await signIn(h.hg.ctx, { sub: 'eve@lifescience-ri.eu', email: EVE, email_verified: true });
  t.deepEqual(bound, [EVE]);
  await until(async () => (await heldItems(h)).length === 0 && (await h.inbox()).every((i) => i.state === 'done'), { what: 'the released mail ticketed' });
  t.deepEqual((await h.tickets()).map((x) => [x.number, x.ownerSub]), [[100001, 'eve@lifescience-ri.eu']]);
  t.deepEqual((await h.articles(100001)).map((a) => a.messageId), [first.messageId, followUp.messageId]);
  t.deepEqual(await heldItems(h), []);
});

test('automated mail from an unbound sender is held without an answer; agents and participants pass, strangers do not', async (t) => {
  const h = await startHolding(t);
  const PACS = 'pacs-monitor@hospital-loop.example';
  const PAT = 'pat@partner.example';
  const raw = fixture('auto-submitted-auto-generated.eml');
  t.regex((await h.send({ envelope: { from: PACS, to: [HELPDESK] }, raw })).response, /^250 /);

  // An agent writing to the helpdesk opens a ticket, bound or not; Pat in Cc becomes a participant.
  const fromAgent = await h.send({ from: FL_AGENT, to: HELPDESK, cc: PAT, subject: 'Planned maintenance of the viewer', text: 'Saturday 08:00-10:00.' });
  t.regex(fromAgent.response, /^250 /);
  await quiet(h);
  t.deepEqual((await h.tickets()).map((x) => [x.number, x.requester.address, x.ownerSub, x.participants]), [[100001, FL_AGENT, null, [PAT]]]);

  // Pat, bound to nobody, continues the ticket he takes part in; a stranger naming it is held.
  const fromPat = await h.send({ from: PAT, to: HELPDESK, subject: 'Re: [CIE#100001] Planned maintenance of the viewer', text: 'Fine for us.' });
  const fromStranger = await h.send({ from: 'sam@elsewhere.example', to: HELPDESK, subject: 'Re: [CIE#100001] Planned maintenance of the viewer', text: 'And for us?' });
  t.regex(fromStranger.response, /^250 /);
  await quiet(h);
  t.deepEqual((await h.articles(100001)).map((a) => [a.authorRole, a.messageId]), [
    ['requester', fromAgent.messageId],
    ['participant', fromPat.messageId],
  ]);
  t.deepEqual((await h.tickets()).map((x) => x.number), [100001]);
  t.deepEqual((await heldItems(h)).map((i) => i.heldAddress), [PACS, 'sam@elsewhere.example']);
  t.is(h.relay.to(PACS).length, 0, 'no answer to automated mail');
  t.is(h.relay.to('sam@elsewhere.example').length, 1, 'the stranger gets the sign-in link');
});

test('UNBOUND_SENDERS=accept opens a ticket for any sender, as before', async (t) => {
  const h = await startTestHelpgate(t, { db: await freshDb(), env: { UNBOUND_SENDERS: 'accept' } });
  const sent = await h.send({ from: 'stranger@elsewhere.example', to: HELPDESK, subject: 'Question about the AUP', text: 'Where is it?' });
  t.regex(sent.response, /^250 /);
  const ack = await h.relay.waitFor((m) => m.envelope.rcptTo.includes('stranger@elsewhere.example'), 'the acknowledgement');
  t.is(ack.parsed.subject, '[CIE#100001] Question about the AUP');
  await quiet(h);
  t.deepEqual(await heldItems(h), []);
  t.is((await h.ticket(100001))!.ownerSub, null);
});

test('held mail nobody claims expires after HOLD_DAYS with one last notice, and its link with it', async (t) => {
  const clock = new TestClock();
  const h = await startHolding(t, clock);
  const ctx = h.hg.ctx;
  const DORA = 'dora@uni.example';
  const sent = await h.send({ from: DORA, to: HELPDESK, subject: 'Quota for my project', text: 'We need 2 TB more.' });
  const answer = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(DORA), 'the sign-in answer');
  const token = tokenIn(answer, 'http://localhost:3000/auth/claim');
  await quiet(h);

  t.is(await expireHeldMail(ctx), 0, 'not old enough yet');
  clock.advance(15 * DAY);
  t.is(await expireHeldMail(ctx), 1);
  t.is(await expireHeldMail(ctx), 0, 'a second run has nothing to do');

  const notice = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(DORA) && m.parsed.subject.startsWith('Not turned into a ticket'), 'the expiry notice');
  t.true(notice.parsed.subject.includes('Quota for my project'));
  t.is(notice.parsed.inReplyTo, sent.messageId);
  t.is(notice.header('auto-submitted'), 'auto-generated');
  t.true(notice.parsed.text.includes('http://localhost:3000'));
  await quiet(h);
  t.is(h.relay.to(DORA).length, 2, 'the answer and one notice');
  t.deepEqual((await h.inbox()).map((i) => [i.state, i.heldAddress]), [['expired', DORA]]);

  await signIn(ctx, { sub: 'dora@lifescience-ri.eu' });
  t.deepEqual(await releaseHeldMail(ctx, 'dora@lifescience-ri.eu', token), { ok: false, reason: 'expired' });
  t.deepEqual(await h.tickets(), []);
});
