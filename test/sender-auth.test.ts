/**
 * Sender authentication over real SMTP, in the default mode (UNAUTHENTICATED_SENDERS=flag),
 * with DNS answered from fixture records: a forged From: is kept but changes nothing, the same
 * mail DKIM-signed by the requester's domain counts, so does a reply to the requester's own
 * reply address; a trusted hop's Authentication-Results counts and any other is ignored; the
 * open mode takes From: at its word; and a forged mail that Cc's an attacker never lets the
 * attacker read the ticket on the portal.
 */
import { generateKeyPairSync } from 'node:crypto';
import test from 'ava';
import type { Page } from 'playwright-core';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { freePort } from '../src/db/embedded.ts';
import type { Article } from '../src/db/models/article.ts';
import { FLAG_UNVERIFIED_FOLLOW_UP, FLAG_UNVERIFIED_OPENING } from '../src/domain/ingest/sender-trust.ts';
import { startBrowser, screenshot, type TestBrowser, signInWithDevAai } from './helpers/browser.ts';
import { fixtureResolver } from './helpers/dns-fixture.ts';
import { FIRST_LINE, HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { clientReply, quiet } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';
import { databasePerTest } from './helpers/database-per-test.ts';

const FL_AGENT = FIRST_LINE[0]!;
/** A requester whose domain signs its mail and publishes DMARC p=reject. */
const BOB = 'bob@hospital.example';
const CAROL = 'carol@hospital.example';
/** A requester whose domain publishes no DMARC record. */
const ANN = 'ann@nodmarc.example';
const MALLORY = 'mallory@evil.example';
/** The dev LS AAI's researcher: the attacker of the portal check. */
const ATTACKER = 'researcher@university.example';

const dkimKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicKey = dkimKey.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
const privateKey = dkimKey.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const dns = fixtureResolver({
  'hospital.example': 'v=spf1 -all',
  'sel1._domainkey.hospital.example': `v=DKIM1; k=rsa; p=${publicKey}`,
  '_dmarc.hospital.example': 'v=DMARC1; p=reject',
  // A domain whose DNS server does not answer.
  '_dmarc.slow.example': 'timeout',
});
/** nodemailer signs the mail as hospital.example's outbound server would. */
const signedByHospital = { dkim: { domainName: 'hospital.example', keySelector: 'sel1', privateKey } };

/** One database server for the file; each helpgate has a database of its own on it. */
const freshDb = databasePerTest(test);
let h: TestHelpgate;
let browser: TestBrowser;
let base: string;

test.before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  h = await startTestHelpgate(null, { db: await freshDb(), portal: true, dns, env: { UNAUTHENTICATED_SENDERS: undefined, HTTP_PORT: String(port), PUBLIC_URL: base } });
  browser = await startBrowser();
});
test.after.always(async () => {
  await browser?.close();
  await h?.stop();
});

let counter = 0;
const mid = (domain: string) => `<auth-${Date.now()}-${++counter}@${domain}>`;

/** Sends a mail with its own Message-ID and waits until it is filed; returns its article. */
async function deliver(hg: TestHelpgate, mail: Mail.Options): Promise<Article> {
  const messageId = (mail.messageId as string | undefined) ?? mid(String(mail.from).replace(/^.*@|>$/g, ''));
  const sent = await hg.send({ ...mail, messageId });
  if (!/^250 /.test(sent.response)) throw new Error(`not accepted: ${sent.response}`);
  return until(() => hg.hg.store.models.Article.findOne({ messageId }).lean<Article>(), { what: `the article of ${messageId}`, timeoutMs: 60_000 });
}

/** An agent's mail to their own reply address of the ticket (from the notification they got). */
async function agentCommand(hg: TestHelpgate, ticket: number, text: string): Promise<void> {
  const notice = await hg.relay.waitFor((m) => m.envelope.rcptTo.includes(FL_AGENT) && m.parsed.subject?.includes(`#${ticket}]`) === true, 'a notification to the agent', 60_000);
  await deliver(hg, clientReply(notice, { from: FL_AGENT, text }));
}

async function state(hg: TestHelpgate, number: number): Promise<string> {
  await quiet(hg);
  return (await hg.ticket(number))!.state;
}

test.serial('a forged From: on a ticket is kept flagged and changes nothing; the same mail DKIM-signed by the requester’s domain counts', async (t) => {
  const opening = await deliver(h, { ...signedByHospital, from: `Bob Patient <${BOB}>`, to: HELPDESK, subject: 'Access to cohort 7', text: 'Please grant me access to cohort 7.' });
  t.like(opening.senderAuth, { status: 'verified', via: 'dmarc', address: BOB, dkim: 'pass', dmarc: 'pass', alignedDomain: 'hospital.example', spf: 'fail' });
  t.deepEqual(opening.senderAuth!.dkimDomains, ['hospital.example']);
  const number = opening.ticketNumber;
  await agentCommand(h, number, '/waiting\nWhich project is this for?');
  t.is(await state(h, number), 'waiting for reply');

  // Mallory writes as Bob over plain SMTP from her own envelope, Cc'ing herself.
  const forged = { from: `Bob Patient <${BOB}>`, to: HELPDESK, cc: MALLORY, subject: `Re: [CIE#${number}] Access to cohort 7`, text: 'Project X. Please send the credentials to my colleague in Cc.' };
  const kept = await deliver(h, { ...forged, envelope: { from: MALLORY, to: [HELPDESK] } });
  t.is(kept.ticketNumber, number, 'kept on the ticket it names');
  t.is(kept.authorRole, 'requester');
  t.like(kept.senderAuth, { status: 'unverified', via: null, dmarc: 'fail', dkim: 'none', alignedDomain: null });
  t.regex(kept.senderAuth!.reason, /DMARC fail for hospital\.example/);
  t.is(kept.flag, FLAG_UNVERIFIED_FOLLOW_UP);
  t.is(await state(h, number), 'waiting for reply', 'no state change');
  let ticket = (await h.ticket(number))!;
  t.deepEqual(ticket.participants, [], 'nobody brought in');
  t.not(ticket.requesterTip, kept.messageId, 'our next mail to Bob does not answer the forgery');
  // The unit sees it, marked.
  const told = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(FL_AGENT) && m.parsed.inReplyTo === kept.messageId, 'the notification of the forged mail', 60_000);
  t.true(told.parsed.text!.includes('UNVERIFIED SENDER'));
  t.is(h.relay.to(MALLORY).length, 0);
  const inbox = await h.hg.store.models.Inbox.findById(kept.inboxId).lean<{ note: string }>();
  t.regex(inbox!.note, /unverified sender/);

  // The same mail, signed by hospital.example's server: Bob's reply.
  const real = await deliver(h, { ...forged, ...signedByHospital, cc: CAROL });
  t.like(real.senderAuth, { status: 'verified', via: 'dmarc' });
  t.is(real.flag, null);
  t.is(await state(h, number), 'in progress');
  ticket = (await h.ticket(number))!;
  t.deepEqual(ticket.participants, [CAROL]);
  t.deepEqual(ticket.verifiedParticipants, [CAROL]);
  t.is(ticket.requesterTip, real.messageId);
});

test.serial('a reply to the requester’s own reply address counts, whatever DMARC says; the same words to help@ do not', async (t) => {
  // nodmarc.example publishes nothing: Ann's first mail opens a ticket, unverified.
  const opening = await deliver(h, { from: `Ann Analyst <${ANN}>`, to: HELPDESK, cc: MALLORY, subject: 'Viewer crashes', text: 'The viewer crashes on series 3.' });
  t.like(opening.senderAuth, { status: 'unverified', dmarc: 'none' });
  t.regex(opening.senderAuth!.reason, /nodmarc\.example publishes no DMARC record/);
  t.is(opening.flag, FLAG_UNVERIFIED_OPENING);
  const number = opening.ticketNumber;
  let ticket = (await h.ticket(number))!;
  t.is(ticket.state, 'new', 'opened, so that nothing is lost');
  t.is(ticket.requester.address, ANN);
  t.deepEqual(ticket.participants, [], 'her Cc is not made a participant');

  // Her acknowledgement carries her own reply address.
  const ack = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(ANN) && m.parsed.inReplyTo === opening.messageId, 'the acknowledgement', 60_000);
  const annAddress = ack.parsed.replyTo[0]!.address;
  t.regex(annAddress, new RegExp(`^help\\+${number}-[a-z2-7]{20}@helpdesk\\.localhost$`));

  await agentCommand(h, number, '/waiting\nWhich browser do you use?');
  t.is(await state(h, number), 'waiting for reply');
  const question = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(ANN) && m.parsed.text!.includes('Which browser'), 'the question to Ann', 60_000);
  t.deepEqual(question.parsed.replyTo.map((a) => a.address), [annAddress], 'the same address on every mail to her');

  // Written to help@ with the tag: nothing proves it is Ann.
  const plain = await deliver(h, { from: ANN, to: HELPDESK, subject: `Re: [CIE#${number}] Viewer crashes`, text: 'Firefox 128.' });
  t.is(plain.senderAuth!.status, 'unverified');
  t.is(await state(h, number), 'waiting for reply');

  // Her token is not anyone else's: another From: to her address is not verified by it.
  const other = await deliver(h, { ...clientReply(question, { from: `Ann Analyst <${ANN.replace('ann', 'anna')}>`, text: 'Chrome.' }) });
  t.is(other.senderAuth!.status, 'unverified');
  t.is(await state(h, number), 'waiting for reply');

  // Pressing Reply in her own mailbox: to her reply address.
  const reply = await deliver(h, clientReply(question, { from: `Ann Analyst <${ANN}>`, text: 'Firefox 128 on Linux.' }));
  t.like(reply.senderAuth, { status: 'verified', via: 'token', dmarc: 'none' });
  t.is(reply.ticketNumber, number);
  t.is(await state(h, number), 'in progress');
  ticket = (await h.ticket(number))!;
  t.is(ticket.requesterTip, reply.messageId);
});

test.serial('the portal: a forged From: that Cc’s an attacker does not let the attacker read the ticket; agents see who is verified', async (t) => {
  const opening = await deliver(h, { ...signedByHospital, from: BOB, to: HELPDESK, subject: 'My imaging results', text: 'Results of study 42 attached.', attachments: [{ filename: 'results.txt', content: 'confidential' }] });
  const number = opening.ticketNumber;
  // Mallory (the attacker, bound on the portal as the researcher) forges Bob and Cc's herself.
  const forged = await deliver(h, { from: BOB, to: HELPDESK, cc: ATTACKER, subject: `Re: [CIE#${number}] My imaging results`, text: 'Please add my colleague.', envelope: { from: ATTACKER, to: [HELPDESK] } });
  t.is(forged.senderAuth!.status, 'unverified');
  await quiet(h);
  t.deepEqual((await h.ticket(number))!.participants, []);

  const attacker = await signedIn('researcher');
  for (const url of [`/tickets/${number}`, `/tickets/${number}/articles/${opening._id}/attachments/0`]) {
    const res = await attacker.goto(base + url);
    t.is(res!.status(), 404, url);
    t.false((await attacker.textContent('body'))!.includes('imaging results'), url);
  }

  // The agent's page marks each received mail, in words.
  const agent = await signedIn('fl-agent');
  await agent.goto(`${base}/tickets/${number}`);
  await screenshot(agent, import.meta.url, 'agent ticket with sender marks');
  const mark = (a: Article) => agent.locator(`#a-${a._id} .sender-mark`);
  t.regex((await mark(opening).textContent())!, /Verified sender\s+DMARC pass for hospital\.example/);
  t.regex((await mark(forged).textContent())!, /Unverified sender\s+DMARC fail for hospital\.example/);
  t.regex((await agent.locator('.unverified-senders').textContent())!, /1 mail on this ticket/);

  // Bob himself (signed) brings the researcher in: now she may read it.
  await deliver(h, { ...signedByHospital, from: BOB, to: HELPDESK, cc: ATTACKER, subject: `Re: [CIE#${number}] My imaging results`, text: 'Adding Rita, who analyses the study.' });
  await quiet(h);
  t.deepEqual((await h.ticket(number))!.verifiedParticipants, [ATTACKER]);
  const res = await attacker.goto(`${base}/tickets/${number}`);
  t.is(res!.status(), 200);
  // Requesters and participants do not get the agents' marks.
  t.is(await attacker.locator('.sender-mark').count(), 0);
  await attacker.close();
  await agent.close();
});

test('a trusted hop’s Authentication-Results counts; any other one, or one below it, is ignored', async (t) => {
  const hop = await startTestHelpgate(t, { db: await freshDb(), dns: fixtureResolver({}), env: { UNAUTHENTICATED_SENDERS: undefined, TRUSTED_AUTHSERV_IDS: 'mx.helpdesk.example, imap.provider.example' } });
  const passFor = (id: string) => `${id}; spf=pass smtp.mailfrom=dora@partner.example; dkim=pass header.d=partner.example; dmarc=pass (p=none) header.from=partner.example`;
  const mail = (headers: { key: string; value: string }[], cc: string) => ({ from: 'dora@partner.example', to: HELPDESK, cc, subject: 'Shared dataset', text: 'See the dataset.', headers });

  const trusted = await deliver(hop, mail([{ key: 'Authentication-Results', value: passFor('mx.helpdesk.example') }], 'eve@partner.example'));
  t.like(trusted.senderAuth, { status: 'verified', via: 'hop', hop: 'mx.helpdesk.example', dmarc: 'none', alignedDomain: 'partner.example' });
  t.regex(trusted.senderAuth!.reason, /mx\.helpdesk\.example reports DMARC pass for partner\.example/);
  await quiet(hop);
  t.deepEqual((await hop.ticket(trusted.ticketNumber))!.verifiedParticipants, ['eve@partner.example']);

  const untrusted = await deliver(hop, mail([{ key: 'Authentication-Results', value: passFor('mx.elsewhere.example') }], 'fred@partner.example'));
  t.like(untrusted.senderAuth, { status: 'unverified', hop: null, alignedDomain: null });
  await quiet(hop);
  t.deepEqual((await hop.ticket(untrusted.ticketNumber))!.participants, []);

  // Our provider's own header is the topmost; a "pass" a sender wrote below it counts for nothing.
  const below = await deliver(hop, mail([
    { key: 'Authentication-Results', value: 'imap.provider.example; spf=fail smtp.mailfrom=dora@partner.example; dkim=none; dmarc=fail header.from=partner.example' },
    { key: 'Authentication-Results', value: passFor('mx.helpdesk.example') },
  ], 'gus@partner.example'));
  t.like(below.senderAuth, { status: 'unverified', hop: 'imap.provider.example' });
  t.regex(below.senderAuth!.reason, /DMARC fail for partner\.example/);
});

test('UNAUTHENTICATED_SENDERS=accept takes From: at its word where no DMARC is published, as before; a DMARC failure is still unverified', async (t) => {
  const open = await startTestHelpgate(t, { db: await freshDb(), dns, env: { UNAUTHENTICATED_SENDERS: 'accept' } });
  const opening = await deliver(open, { from: ANN, to: HELPDESK, subject: 'Slow downloads', text: 'Downloads run at 1 MB/s.' });
  t.like(opening.senderAuth, { status: 'accepted', via: null });
  t.is(opening.flag, null);
  const number = opening.ticketNumber;
  await agentCommand(open, number, '/waiting\nFrom which site?');
  t.is(await state(open, number), 'waiting for reply');

  // Anyone may write as Ann from anywhere, as in an open helpdesk: it counts as hers.
  const asAnn = await deliver(open, { from: ANN, to: HELPDESK, cc: 'olga@nodmarc.example', subject: `Re: [CIE#${number}] Slow downloads`, text: 'From Lyon.', envelope: { from: MALLORY, to: [HELPDESK] } });
  t.is(asAnn.senderAuth!.status, 'accepted');
  t.is(await state(open, number), 'in progress');
  const ticket = (await open.ticket(number))!;
  t.deepEqual(ticket.participants, ['olga@nodmarc.example']);
  t.deepEqual(ticket.verifiedParticipants, [], 'accepted, not proven');

  // hospital.example publishes DMARC: a forgery of it is caught in the open mode too.
  const bob = await deliver(open, { from: BOB, to: HELPDESK, subject: 'Question', text: 'Hello.', envelope: { from: MALLORY, to: [HELPDESK] } });
  t.like(bob.senderAuth, { status: 'unverified', dmarc: 'fail' });
  // A DNS timeout is no pass, and no "no DMARC record" either.
  const slow = await deliver(open, { from: 'sam@slow.example', to: HELPDESK, subject: 'Question', text: 'Hello.' });
  t.like(slow.senderAuth, { status: 'unverified', dmarc: 'temperror' });
  t.regex(slow.senderAuth!.reason, /DNS error/);
});

/** Signs in through the dev LS AAI, accepting the consents shown. */
async function signedIn(username: string): Promise<Page> {
  const page = await browser.newPage();
  await signInWithDevAai(page, base, username);
  return page;
}
