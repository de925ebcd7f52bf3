import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loadConfig } from '../src/config/load.ts';
import { toBuffer } from '../src/db/blobs.ts';
import type { InboxItem } from '../src/db/models/inbox.ts';
import type { OutboxMail } from '../src/db/models/outbox.ts';
import { agentTicketView } from '../src/domain/portal/agent-view.ts';
import { createLogger } from '../src/log/logger.ts';
import { parseDeliveryReport } from '../src/mail/parse/dsn.ts';
import { startHelpgate } from '../src/main.ts';
import { cliDatabaseEnv, runCli } from './helpers/cli.ts';
import { databasePerTest } from './helpers/database-per-test.ts';
import { FIRST_LINE, HELPDESK, startTestHelpgate, testEnv, type TestHelpgate } from './helpers/helpgate.ts';
import type { CapturedMail } from './helpers/capture-smtp.ts';
import { clientReply, fixture, quiet } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';

const database = databasePerTest(test);

/** mailauth ships no type declarations: the little of it used here, typed where it is used. */
interface AuthResult {
  dkim: { results: { signingDomain: string; selector: string; status: { result: string; comment?: string } }[] };
  dmarc: { status: { result: string } } | false;
}
const { authenticate } = createRequire(import.meta.url)('mailauth') as {
  authenticate(input: Buffer, opts: Record<string, unknown>): Promise<AuthResult>;
};

const ADA = 'ada@uni-bounce.example';
const VERP = /^help\+bounce-([0-9a-f]{24})-([a-z2-7]{12})@helpdesk\.localhost$/;

/** A DNS that knows only the given TXT records (no network): what mailauth asks, answered from them. */
function fixtureResolver(txt: Record<string, string>) {
  return async (name: string, type: string) => {
    const value = type === 'TXT' ? txt[name.toLowerCase().replace(/\.$/, '')] : undefined;
    if (value === undefined) throw Object.assign(new Error(`no ${type} record for ${name}`), { code: 'ENOTFOUND' });
    // As DNS gives it: one TXT record of strings of at most 255 characters.
    return [value.match(/.{1,255}/g)!];
  };
}

/** The DKIM record `helpgate dkim --json` tells the operator to publish. */
async function publishedDkim(h: TestHelpgate, env: Record<string, string> = {}): Promise<{ name: string; value: string }> {
  const result = await runCli(['dkim', '--json'], { env: { ...cliDatabaseEnv(h.db), ...env } });
  if (result.code !== 0) throw new Error(result.stderr);
  return (JSON.parse(result.stdout) as { dkim: { name: string; value: string } }).dkim;
}

function verify(raw: Buffer, records: Record<string, string>, sender: string): Promise<AuthResult> {
  return authenticate(raw, { resolver: fixtureResolver(records), ip: '192.0.2.10', helo: 'relay.helpdesk.localhost', mta: 'mx.uni-bounce.example', sender, disableArc: true, disableBimi: true });
}

/** A fixture DSN with the bounce address, the recipient and the Message-ID of the mail it returns. */
function dsn(name: string, values: { RETURN_PATH: string; RECIPIENT: string; MESSAGE_ID: string }): Buffer {
  let text = fixture(name).toString('utf8');
  for (const [key, value] of Object.entries(values)) text = text.replaceAll(`{{${key}}}`, value);
  return Buffer.from(text.replace(/\r?\n/g, '\r\n'));
}

/** Opens a ticket for Ada and waits for its acknowledgement to be accepted by the relay. */
async function ticketWithAck(h: TestHelpgate, subject: string): Promise<{ ack: CapturedMail; mail: OutboxMail }> {
  const { messageId } = await h.send({ from: `Ada Lovelace <${ADA}>`, to: HELPDESK, subject, text: 'The upload stops at 40 %.' });
  const ack = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(ADA) && m.parsed.inReplyTo === messageId, `the acknowledgement of "${subject}"`);
  const mail = await until(() => h.hg.store.models.Outbox.findOne({ messageId: ack.parsed.messageId, state: 'sent' }).lean<OutboxMail>(), { what: 'the acknowledgement settled as sent' });
  return { ack, mail };
}

/** Delivers a report from the null reverse-path, as MTAs send them, and waits until it is processed. */
async function deliverReport(h: TestHelpgate, to: string, raw: Buffer): Promise<InboxItem> {
  const { response } = await h.send({ envelope: { from: false, to: [to] }, raw });
  if (!/^250 /.test(response)) throw new Error(`intake answered ${response}`);
  const sha = createHash('sha256').update(raw).digest('hex');
  return until(() => h.hg.store.models.Inbox.findOne({ rawSha256: sha, state: { $ne: 'pending' } }).lean<InboxItem>(), { what: 'the report to be processed' });
}

const outboxMail = (h: TestHelpgate, id: unknown) => h.hg.store.models.Outbox.findById(id).lean<OutboxMail>() as Promise<OutboxMail>;

test('outbound mail goes out DKIM-signed, and the signature verifies against the record `helpgate dkim` prints; the envelope sender is the bounce address', async (t) => {
  const h = await startTestHelpgate(t, { db: await database() });
  const { ack, mail } = await ticketWithAck(h, 'Cannot upload the imaging data');
  const record = await publishedDkim(h);
  t.is(record.name, 'helpgate._domainkey.helpdesk.localhost');
  t.regex(record.value, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/]{300,}={0,2}$/, 'a 2048-bit RSA key');

  // VERP: the envelope sender names this very mail.
  const verp = VERP.exec(ack.envelope.mailFrom ?? '');
  t.truthy(verp, `envelope sender ${ack.envelope.mailFrom}`);
  t.is(verp![1], String(mail._id));
  t.is(mail.envelopeFrom, ack.envelope.mailFrom!);

  const records = { [record.name]: record.value, '_dmarc.helpdesk.localhost': 'v=DMARC1; p=reject' };
  const result = await verify(ack.raw, records, ack.envelope.mailFrom!);
  const [signature] = result.dkim.results;
  t.is(signature?.status.result, 'pass', signature?.status.comment);
  t.is(signature?.signingDomain, 'helpdesk.localhost');
  t.is(signature?.selector, 'helpgate');
  t.is(result.dmarc && result.dmarc.status.result, 'pass', 'DKIM aligns with the From domain');

  // Not a vacuous pass: a changed body, or a key that is not ours, fails.
  const tampered = Buffer.from(ack.raw.toString('latin1').replace('registered as', 'registred as'), 'latin1');
  t.not(tampered.toString('latin1'), ack.raw.toString('latin1'));
  t.not((await verify(tampered, records, ack.envelope.mailFrom!)).dkim.results[0]?.status.result, 'pass');
  const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  t.not((await verify(ack.raw, { ...records, [record.name]: `v=DKIM1; k=rsa; p=${otherKey}` }, ack.envelope.mailFrom!)).dkim.results[0]?.status.result, 'pass');

  // Every process on the database signs with the same key: a second helpgate's mail verifies too.
  const second = await startTestHelpgate(t, { db: h.db, relay: h.relay });
  const { messageId } = await second.send({ from: `Ada Lovelace <${ADA}>`, to: HELPDESK, subject: 'Second instance', text: 'Hello again.' });
  const ack2 = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(ADA) && m.parsed.inReplyTo === messageId, 'the acknowledgement of the second instance');
  t.is((await verify(ack2.raw, records, ack2.envelope.mailFrom!)).dkim.results[0]?.status.result, 'pass');
});

test('DKIM_PRIVATE_KEY_FILE and DKIM_SELECTOR: mail is signed with that key under that selector; a file that is no RSA key stops the start naming the variable', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-dkim-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = path.join(dir, 'dkim.pem');
  writeFileSync(keyFile, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }));
  const env = { DKIM_PRIVATE_KEY_FILE: keyFile, DKIM_SELECTOR: '2026a' };
  const db = await database();
  const h = await startTestHelpgate(t, { db, env });
  const { ack } = await ticketWithAck(h, 'Signed with our own key');
  const record = await publishedDkim(h, env);
  t.is(record.name, '2026a._domainkey.helpdesk.localhost');
  t.is(await h.hg.store.models.Secret.countDocuments({ _id: 'dkim-key' }), 0, 'no key made in the database');
  const result = await verify(ack.raw, { [record.name]: record.value }, ack.envelope.mailFrom!);
  t.like(result.dkim.results[0], { selector: '2026a', status: { result: 'pass' } });

  const notAKey = path.join(dir, 'ed25519.pem');
  writeFileSync(notAKey, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const config = loadConfig(testEnv({ HELPGATE_DATA_DIR: dir, DKIM_PRIVATE_KEY_FILE: notAKey }));
  await t.throwsAsync(startHelpgate(config, { database: db.server, dbName: db.dbName, log: createLogger('silent'), portal: false }), {
    message: /^DKIM_PRIVATE_KEY_FILE: .* holds a ed25519 key; DKIM needs an RSA key/,
  });
});

test('a DSN to the bounce address marks that mail failed, notes it on the ticket for agents only, opens nothing and answers nothing', async (t) => {
  const h = await startTestHelpgate(t, { db: await database() });
  const { ack, mail } = await ticketWithAck(h, 'Cannot upload the imaging data');
  await quiet(h);
  const mailsBefore = await h.hg.store.models.Outbox.countDocuments();
  const relayedBefore = h.relay.mails.length;

  const report = dsn('dsn-postfix-hard-bounce-verp.eml', { RETURN_PATH: ack.envelope.mailFrom!, RECIPIENT: ADA, MESSAGE_ID: ack.parsed.messageId! });
  const item = await deliverReport(h, ack.envelope.mailFrom!, report);
  t.is(item.state, 'ignored');
  t.regex(item.note ?? '', /ada@uni-bounce\.example failed \(5\.1\.1\); recorded/);
  t.deepEqual(item.envelope.rcptTo, [ack.envelope.mailFrom!], 'the intake took the bounce address and the item keeps it');

  const bounced = await outboxMail(h, mail._id);
  t.is(bounced.state, 'failed');
  t.regex(bounced.lastError ?? '', /5\.1\.1 .*User unknown/);
  t.like(bounced.bounces?.[0], { address: ADA, action: 'failed', status: '5.1.1', reportingMta: 'mx.relay.example' });

  const ticket = (await h.ticket(100001))!;
  t.deepEqual(ticket.lastDeliveryFailure?.to, [ADA]);
  const notes = (await h.articles(100001)).filter((a) => a.authorRole === 'system');
  t.is(notes.length, 1);
  t.true(notes[0]!.internal, 'agents see it; it is not shown or mailed to the requester');
  t.regex(notes[0]!.text, /could not be delivered:\n- ada@uni-bounce\.example: 5\.1\.1 550 5\.1\.1 .*User unknown/);

  await quiet(h);
  t.is((await h.tickets()).length, 1, 'no ticket for the report');
  t.is(await h.hg.store.models.Outbox.countDocuments(), mailsBefore, 'no acknowledgement, no notification');
  t.is(h.relay.mails.length, relayedBefore);

  // The same report delivered again changes nothing; a second mail to Ada bouncing makes it repeated.
  await deliverReport(h, ack.envelope.mailFrom!, Buffer.concat([Buffer.from('X-Redelivered: yes\r\n'), report]));
  t.is((await h.articles(100001)).filter((a) => a.authorRole === 'system').length, 1);
  const second = await ticketWithAck(h, 'Still cannot upload');
  await deliverReport(h, second.ack.envelope.mailFrom!, dsn('dsn-postfix-hard-bounce-verp.eml', { RETURN_PATH: second.ack.envelope.mailFrom!, RECIPIENT: ADA, MESSAGE_ID: second.ack.parsed.messageId! }));
  const secondNote = (await h.articles(100002)).find((a) => a.authorRole === 'system')!;
  t.regex(secondNote.text, /Mail to ada@uni-bounce\.example has now bounced 2 times\./);

  const view = await agentTicketView(h.hg.ctx, (await h.ticket(100002))!, { address: FIRST_LINE[0]!, name: '', sub: null, role: 'agent' });
  t.like(view.bouncing, [{ address: ADA, count: 2, lastStatus: '5.1.1' }]);
  const listing = await runCli(['outbox'], { env: cliDatabaseEnv(h.db) });
  t.is(listing.code, 0, listing.stderr);
  t.regex(listing.stdout, /bounced 2 times or more[^\n]*\nADDRESS +HARD BOUNCES[^\n]*\nada@uni-bounce\.example +2 /);
  t.regex(listing.stdout, new RegExp(`${mail._id} +failed +ack .*bounced: ada@uni-bounce\\.example 5\\.1\\.1`));
});

test('a DSN that names only our Message-ID, sent to the helpdesk address, marks that mail failed; one naming someone else records nothing', async (t) => {
  const h = await startTestHelpgate(t, { db: await database() });
  const { ack, mail } = await ticketWithAck(h, 'Cannot upload the imaging data');

  const stranger = await deliverReport(h, HELPDESK, dsn('dsn-exchange-message-id-only.eml', { RETURN_PATH: HELPDESK, RECIPIENT: 'eve@elsewhere.example', MESSAGE_ID: ack.parsed.messageId! }));
  t.is(stranger.state, 'ignored');
  t.regex(stranger.note ?? '', /nothing to record/);
  t.is((await outboxMail(h, mail._id)).state, 'sent', 'a report about an address the mail never went to changes nothing');

  const item = await deliverReport(h, HELPDESK, dsn('dsn-exchange-message-id-only.eml', { RETURN_PATH: HELPDESK, RECIPIENT: ADA, MESSAGE_ID: ack.parsed.messageId! }));
  t.is(item.state, 'ignored');
  t.regex(item.note ?? '', /failed \(5\.2\.2\); recorded/);
  const bounced = await outboxMail(h, mail._id);
  t.is(bounced.state, 'failed');
  t.like(bounced.bounces?.[0], { address: ADA, status: '5.2.2', diagnostic: '552 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException' });
  const notes = (await h.articles(100001)).filter((a) => a.authorRole === 'system');
  t.is(notes.length, 1);
  t.true(notes[0]!.internal);

  // A report about a mail that is not ours is dropped with a note: never a ticket.
  const foreign = await deliverReport(h, HELPDESK, dsn('dsn-exchange-message-id-only.eml', { RETURN_PATH: HELPDESK, RECIPIENT: ADA, MESSAGE_ID: '<not-ours.1@elsewhere.example>' }));
  t.is(foreign.state, 'ignored');
  t.regex(foreign.note ?? '', /not a mail of ours/);
  await quiet(h);
  t.is((await h.tickets()).length, 1);
  t.is(h.relay.to(ADA).length, 1, 'Ada got her acknowledgement and nothing more');
});

test('a delayed DSN (4.x.x) marks the mail delayed; a later failure makes it failed', async (t) => {
  const h = await startTestHelpgate(t, { db: await database() });
  const { ack, mail } = await ticketWithAck(h, 'Cannot upload the imaging data');
  const values = { RETURN_PATH: ack.envelope.mailFrom!, RECIPIENT: ADA, MESSAGE_ID: ack.parsed.messageId! };

  const item = await deliverReport(h, ack.envelope.mailFrom!, dsn('dsn-postfix-delayed-verp.eml', values));
  t.regex(item.note ?? '', /ada@uni-bounce\.example delayed \(4\.4\.1\); recorded/);
  const delayed = await outboxMail(h, mail._id);
  t.is(delayed.state, 'delayed');
  t.like(delayed.bounces?.[0], { address: ADA, action: 'delayed', status: '4.4.1', diagnostic: 'connect to mx.remote.example[192.0.2.25]:25: Connection timed out' });
  t.is((await h.ticket(100001))!.lastDeliveryFailure, null, 'a delay is no failure');
  t.is(await h.hg.store.models.HardBounce.countDocuments(), 0);
  const [note] = (await h.articles(100001)).filter((a) => a.authorRole === 'system');
  t.true(note!.internal);
  t.regex(note!.text, /is delayed; the sending server keeps trying:\n- ada@uni-bounce\.example: 4\.4\.1 /);

  await deliverReport(h, ack.envelope.mailFrom!, dsn('dsn-postfix-hard-bounce-verp.eml', values));
  t.is((await outboxMail(h, mail._id)).state, 'failed');
  t.is((await h.articles(100001)).filter((a) => a.authorRole === 'system').length, 2);
  await quiet(h);
  t.is((await h.tickets()).length, 1);
});

test('a bounce to a made-up or altered bounce address is ignored with a note and opens nothing', async (t) => {
  const h = await startTestHelpgate(t, { db: await database() });
  const { ack, mail } = await ticketWithAck(h, 'Cannot upload the imaging data');
  const [, id, mac] = VERP.exec(ack.envelope.mailFrom!)!;
  const forged = `help+bounce-${id}-${mac!.startsWith('a') ? 'b' : 'a'}${mac!.slice(1)}@helpdesk.localhost`;

  const item = await deliverReport(h, forged, dsn('dsn-postfix-hard-bounce-verp.eml', { RETURN_PATH: forged, RECIPIENT: ADA, MESSAGE_ID: ack.parsed.messageId! }));
  t.is(item.state, 'ignored');
  t.regex(item.note ?? '', /whose token is not ours: ignored/);
  t.is((await outboxMail(h, mail._id)).state, 'sent');
  t.deepEqual((await h.articles(100001)).map((a) => a.authorRole), ['requester']);

  // Nor does a person's mail to such an address become a ticket.
  const { messageId } = await h.send({ from: 'mallory@elsewhere.example', to: `help+bounce-${'0'.repeat(24)}-aaaaaaaaaaaa@helpdesk.localhost`, subject: 'Hello', text: 'Open a ticket for me.' });
  await until(() => h.hg.store.models.Inbox.findOne({ 'envelope.rcptTo': `help+bounce-${'0'.repeat(24)}-aaaaaaaaaaaa@helpdesk.localhost`, state: 'ignored' }).lean(), { what: `${messageId} ignored` });
  await quiet(h);
  t.is((await h.tickets()).length, 1);
  t.is(h.relay.to('mallory@elsewhere.example').length, 0);
});

test("a stranger's reply to our acknowledgement opens a quiet ticket for First Line: no acknowledgement", async (t) => {
  const h = await startTestHelpgate(t, { db: await database() });
  const { ack } = await ticketWithAck(h, 'Cannot upload the imaging data');

  // Whoever got the acknowledgement (forwarded, or the owner of an address a forger used) answers it.
  const reply = await h.send(clientReply(ack, { from: 'Bea Bystander <bea@elsewhere.example>', text: 'I never wrote to you. Who is this?' }));
  const notified = await Promise.all(FIRST_LINE.map((member) => h.relay.waitFor((m) => m.envelope.rcptTo.includes(member) && m.parsed.inReplyTo === reply.messageId, `First Line told (${member})`)));
  t.true(notified.every((n) => n.parsed.subject.startsWith('[CIE#100002] ')));
  const ticket = (await h.ticket(100002))!;
  t.is(ticket.requester.address, 'bea@elsewhere.example');
  t.is(ticket.referredTicket, 100001);
  t.is(ticket.su, h.config.entryUnit.key);
  t.is(ticket.requesterTip, reply.messageId, 'no acknowledgement is the thread tip');
  await quiet(h);
  t.is(h.relay.to('bea@elsewhere.example').length, 0, 'no acknowledgement');
  t.is(await h.hg.store.models.Outbox.countDocuments({ to: 'bea@elsewhere.example' }), 0);
  t.deepEqual((await h.articles(100001)).map((a) => a.from?.address), [ADA], 'nothing added to the ticket she answered');

  // A new request of hers, naming nothing of ours, is acknowledged as usual.
  const fresh = await h.send({ from: 'bea@elsewhere.example', to: HELPDESK, subject: 'A real question', text: 'How do I get access?' });
  await h.relay.waitFor((m) => m.envelope.rcptTo.includes('bea@elsewhere.example') && m.parsed.inReplyTo === fresh.messageId, 'her acknowledgement');
});

test("under UNBOUND_SENDERS=hold a stranger's reply to one of our mails is held, not ticketed", async (t) => {
  const h = await startTestHelpgate(t, { db: await database(), env: { UNBOUND_SENDERS: 'hold' } });
  // Requests from unbound addresses are held: a ticket an agent opened gives the mail to answer.
  const sent = await h.send({ from: FIRST_LINE[0]!, to: HELPDESK, subject: 'Checking the upload service', text: 'Opened by First Line.' });
  const notification = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(FIRST_LINE[1]!) && m.parsed.inReplyTo === sent.messageId, 'the notification');
  const reply = await h.send(clientReply(notification, { from: 'bea@elsewhere.example', text: 'What is this?' }));
  const item = await until(() => h.hg.store.models.Inbox.findOne({ state: 'held', 'envelope.mailFrom': 'bea@elsewhere.example' }).lean<InboxItem>(), { what: `${reply.messageId} held` });
  t.is(item.heldAddress, 'bea@elsewhere.example');
  t.is((await h.tickets()).length, 1);
});

test('link tokens: once the relay has the mail its stored copy carries no usable token; captured mail keeps it (and is signed)', async (t) => {
  const db = await database();
  const h = await startTestHelpgate(t, { db, env: { UNBOUND_SENDERS: 'hold' } });
  await h.send({ from: 'sam@uni-bounce.example', to: HELPDESK, subject: 'Access', text: 'Please let me in.' });
  const held = await h.relay.waitFor((m) => m.envelope.rcptTo.includes('sam@uni-bounce.example'), 'the sign-in link');
  const token = /token=([A-Za-z0-9_-]{43})/.exec(held.parsed.text)?.[1];
  t.truthy(token, 'the mail that left carries the link');
  t.truthy(await h.hg.store.models.MailToken.findById(createHash('sha256').update(token!).digest('hex')).lean(), 'the token is stored as its hash');

  const stored = await until(() => h.hg.store.models.Outbox.findOne({ kind: 'held', state: 'sent' }).lean<OutboxMail>(), { what: 'the sign-in mail settled' });
  const everything = JSON.stringify(stored);
  t.false(everything.includes(token!), 'no copy of the token in the stored mail');
  t.true(stored.text.includes('/auth/claim?token=[redacted]'));
  t.true(stored.html!.includes('token=[redacted]'));
  const shown = await runCli(['outbox', 'show', String(stored._id)], { env: cliDatabaseEnv(db) });
  t.false(shown.stdout.includes(token!));

  // Without a relay the stored copy is the delivery (development): the link stays readable.
  const dev = await startTestHelpgate(t, { db: await database(), env: { UNBOUND_SENDERS: 'hold', OUTBOUND_SMTP_URL: '' } });
  await dev.send({ from: 'sam@uni-bounce.example', to: HELPDESK, subject: 'Access', text: 'Please let me in.' });
  const captured = await until(() => dev.hg.store.models.Outbox.findOne({ kind: 'held', state: 'captured' }).lean<OutboxMail>(), { what: 'the sign-in mail captured' });
  const raw = toBuffer(captured.raw!);
  t.regex(raw.toString('utf8'), /token=3D[A-Za-z0-9_-]{20}|token=[A-Za-z0-9_-]{43}/, 'captured mail keeps its link for the developer');
  t.regex(captured.text, /token=[A-Za-z0-9_-]{43}/);
  const record = await publishedDkim(dev);
  const result = await verify(raw, { [record.name]: record.value }, captured.envelopeFrom);
  t.is(result.dkim.results[0]?.status.result, 'pass', 'captured mail shows the signature that would go out');
});

test('parseDeliveryReport reads the fields of Postfix, Exchange and base64-encoded reports, and nothing of ordinary or forwarded mail', (t) => {
  const values = { RETURN_PATH: 'help+bounce-x@helpdesk.localhost', RECIPIENT: 'ada@uni-bounce.example', MESSAGE_ID: '<hg.1.abc@helpdesk.localhost>' };
  t.deepEqual(parseDeliveryReport(dsn('dsn-postfix-hard-bounce-verp.eml', values)), {
    reportingMta: 'mx.relay.example',
    recipients: [
      {
        address: 'ada@uni-bounce.example',
        original: 'ada@uni-bounce.example',
        action: 'failed',
        status: '5.1.1',
        diagnostic: '550 5.1.1 <ada@uni-bounce.example>: Recipient address rejected: User unknown in virtual mailbox table',
        remoteMta: 'mx.remote.example',
      },
    ],
    originalMessageId: '<hg.1.abc@helpdesk.localhost>',
  });
  t.like(parseDeliveryReport(dsn('dsn-exchange-message-id-only.eml', values)), { recipients: [{ action: 'failed', status: '5.2.2' }], originalMessageId: '<hg.1.abc@helpdesk.localhost>' });
  t.like(parseDeliveryReport(dsn('dsn-postfix-delayed-verp.eml', values)), { recipients: [{ action: 'delayed', status: '4.4.1' }] });

  const status = Buffer.from('Reporting-MTA: dns; mx.b64.example\r\n\r\nFinal-Recipient: rfc822; bob@uni.example\r\nAction: failed\r\nDiagnostic-Code: smtp; 550 5.7.1 Rejected by policy\r\n').toString('base64');
  const report = [
    'From: postmaster@b64.example',
    'Content-Type: multipart/report; report-type=delivery-status; boundary=inner',
    '',
    '--inner',
    'Content-Type: text/plain',
    '',
    'Undeliverable.',
    '--inner',
    'Content-Type: message/delivery-status',
    'Content-Transfer-Encoding: base64',
    '',
    status,
    '--inner',
    'Content-Type: text/rfc822-headers',
    '',
    'Message-ID: <hg.2.def@helpdesk.localhost>',
    '--inner--',
    '',
  ].join('\r\n');
  // Without a Status field, the code in the diagnostic.
  t.like(parseDeliveryReport(Buffer.from(report)), { reportingMta: 'mx.b64.example', recipients: [{ address: 'bob@uni.example', action: 'failed', status: '5.7.1' }], originalMessageId: '<hg.2.def@helpdesk.localhost>' });
  // The same report forwarded by a person is that person writing, not a report.
  const forwarded = ['From: Bob <bob@uni.example>', 'To: help@helpdesk.localhost', 'Subject: Fwd: Undeliverable', 'Content-Type: multipart/mixed; boundary="outer"', '', '--outer', 'Content-Type: text/plain', '', 'My mail bounced, why?', '--outer', 'Content-Type: message/rfc822', '', report, '--outer--', ''].join('\r\n');
  t.is(parseDeliveryReport(Buffer.from(forwarded)), null);

  t.is(parseDeliveryReport(fixture('sender-mailer-daemon.eml')), null);
  t.is(parseDeliveryReport(fixture('reply-with-cc-html-and-attachment.eml')), null);
});
