import { execFile } from 'node:child_process';
import test from 'ava';
import { onPath } from '../src/db/embedded.ts';
import { startTestDatabase, uniqueDbName, type TestDatabase } from './helpers/database.ts';
import { HELPDESK, smtpClient, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { SmtpDialogue } from './helpers/smtp-dialogue.ts';
import { until } from './helpers/wait.ts';

interface SmtpFailure extends Error {
  responseCode?: number;
  response?: string;
}

// One database server for the tests that do not stop it; each test gets a database of its own on it.
let shared: TestDatabase;
test.before(async () => {
  shared = await startTestDatabase();
});
test.after.always(async () => {
  await shared?.cleanup();
});

function freshDatabase(): TestDatabase {
  return { ...shared, server: shared.server, dbName: uniqueDbName('smtp') };
}

async function ackTo(h: TestHelpgate, address: string) {
  return h.relay.waitFor((m) => m.envelope.rcptTo.includes(address) && m.header('auto-submitted') === 'auto-replied', `the acknowledgement to ${address}`);
}

/** A plain-text message of about `bytes` bytes, in 70-character lines. */
function textOfSize(bytes: number): string {
  return `${'x'.repeat(69)}\n`.repeat(Math.ceil(bytes / 70));
}

test('mail to an address that is not ours is refused with 550 5.1.1 and nothing is stored', async (t) => {
  const h = await startTestHelpgate(t, { db: freshDatabase() });
  for (const to of ['someone@elsewhere.org', 'nobody@helpdesk.localhost']) {
    const err = await t.throwsAsync<SmtpFailure>(h.send({ from: 'ada@uni.example', to, subject: 'Relay attempt', text: 'Hello' }));
    t.is(err?.responseCode, 550, to);
    t.regex(err?.response ?? '', /^550 5\.1\.1 /, to);
  }
  t.is((await h.inbox()).length, 0);
  t.is((await h.tickets()).length, 0);
});

test('the helpdesk address, a Support Unit address and a sub-address are accepted and become tickets', async (t) => {
  const h = await startTestHelpgate(t, { db: freshDatabase() });
  const cases = [
    { to: HELPDESK, from: 'ada@uni.example', subject: 'To the helpdesk' },
    { to: 'first-line@helpdesk.localhost', from: 'bob@uni.example', subject: 'To First Line' },
    { to: 'help+x@helpdesk.localhost', from: 'cy@uni.example', subject: 'To a sub-address' },
  ];
  for (const c of cases) {
    const sent = await h.send({ from: c.from, to: c.to, subject: c.subject, text: 'Please help.' });
    t.regex(sent.response, /^250 /, c.to);
  }
  for (const c of cases) {
    const ack = await ackTo(h, c.from);
    t.regex(ack.parsed.subject, new RegExp(`^\\[CIE#\\d+\\] ${c.subject}$`));
  }
  const inbox = await h.inbox();
  t.deepEqual(inbox.map((i) => i.envelope.rcptTo).sort(), cases.map((c) => [c.to]).sort());
  t.deepEqual((await h.tickets()).map((x) => x.subject).sort(), cases.map((c) => c.subject).sort());
});

test('with one good and one foreign recipient, the good one is accepted and the foreign one refused', async (t) => {
  const h = await startTestHelpgate(t, { db: freshDatabase() });
  const client = smtpClient(h.hg.smtp.port);
  t.teardown(() => client.close());
  const info = await client.sendMail({ from: 'ada@uni.example', to: [HELPDESK, 'someone@elsewhere.org'], subject: 'Mixed recipients', text: 'Hello' });
  t.regex(info.response, /^250 /);
  t.deepEqual(info.accepted, [HELPDESK]);
  t.deepEqual(info.rejected, ['someone@elsewhere.org']);
  const rejection = (info as unknown as { rejectedErrors?: SmtpFailure[] }).rejectedErrors?.[0];
  t.is(rejection?.responseCode, 550);
  t.regex(rejection?.response ?? '', /^550 5\.1\.1 /);
  await ackTo(h, 'ada@uni.example');
  const inbox = await h.inbox();
  t.is(inbox.length, 1);
  t.deepEqual(inbox[0]!.envelope.rcptTo, [HELPDESK]);
  t.deepEqual((await h.tickets()).map((x) => x.subject), ['Mixed recipients']);
});

test('a message over MAX_MESSAGE_SIZE is refused with 552, declared or not; one under it passes', async (t) => {
  const h = await startTestHelpgate(t, { db: freshDatabase(), env: { MAX_MESSAGE_SIZE: '64KB' } });
  const limit = 64 * 1024;
  const big = textOfSize(100 * 1024);

  // A client that declares the size (RFC 1870) is refused at MAIL FROM, before sending anything.
  // nodemailer will not send a SIZE over the advertised limit, so this one is spoken by hand.
  const { dialogue, greeting } = await SmtpDialogue.open(h.hg.smtp.port);
  t.teardown(() => dialogue.close());
  t.is(greeting.code, 220);
  const ehlo = await dialogue.command('EHLO client.uni.example');
  t.is(ehlo.code, 250);
  t.regex(ehlo.text, new RegExp(`^250[ -]SIZE ${limit}$`, 'm'), 'EHLO tells clients the limit');
  const declared = await dialogue.command(`MAIL FROM:<ada@uni.example> SIZE=${100 * 1024}`);
  t.is(declared.code, 552, declared.text);

  // A client that declares a small size and then sends more is refused after the data.
  t.is((await dialogue.command('RSET')).code, 250);
  t.is((await dialogue.command('MAIL FROM:<ada@uni.example> SIZE=1000')).code, 250);
  t.is((await dialogue.command(`RCPT TO:<${HELPDESK}>`)).code, 250);
  t.is((await dialogue.command('DATA')).code, 354);
  const lying = await dialogue.message(`From: ada@uni.example\nTo: ${HELPDESK}\nSubject: Too big, size understated\n\n${big}`);
  t.is(lying.code, 552, lying.text);
  t.is((await dialogue.command('QUIT')).code, 221);

  // nodemailer declares no SIZE (none is set in the envelope): refused after the data.
  const err = await t.throwsAsync<SmtpFailure>(h.send({ from: 'ada@uni.example', to: HELPDESK, subject: 'Too big, size undeclared', text: big }));
  t.is(err?.responseCode, 552);
  t.is((await h.inbox()).length, 0, 'nothing over the limit is stored');

  const sent = await h.send({ from: 'ada@uni.example', to: HELPDESK, subject: 'Just under the limit', text: textOfSize(40 * 1024) });
  t.regex(sent.response, /^250 /);
  const ack = await ackTo(h, 'ada@uni.example');
  t.is(ack.parsed.inReplyTo, sent.messageId);
  t.deepEqual((await h.tickets()).map((x) => x.subject), ['Just under the limit']);
  t.is((await h.inbox()).length, 1);
});

test('while the database is down mail gets 451 4.3.0; the retry after it is back becomes a ticket', async (t) => {
  const db = await startTestDatabase({ own: true });
  t.teardown(() => db.cleanup());
  const h = await startTestHelpgate(t, { db });
  const client = smtpClient(h.hg.smtp.port);
  t.teardown(() => client.close());
  const messageId = '<db-outage-1@uni.example>';
  const mail = {
    envelope: { from: 'ada@uni.example', to: [HELPDESK] },
    raw: [
      'From: Ada Researcher <ada@uni.example>',
      `To: ${HELPDESK}`,
      'Subject: Sent while the database was down',
      `Message-ID: ${messageId}`,
      'Date: Mon, 02 Jun 2025 10:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Please keep this one.',
      '',
    ].join('\r\n'),
  };

  await db.stop();
  const err = await t.throwsAsync<SmtpFailure>(client.sendMail(mail));
  // 451 when the write fails; 421 at the greeting once the readiness probe has seen the outage.
  t.regex(err?.response ?? '', /^(451 4\.3\.0|421 4\.3\.2) /);

  await db.restart();
  // The sender retries as a mail server would; until the driver sees the server again the
  // answer may still be 451, never a permanent refusal.
  const failures: string[] = [];
  const accepted = await until(
    async () => {
      try {
        return (await client.sendMail(mail)).response;
      } catch (e) {
        failures.push((e as SmtpFailure).response ?? (e as Error).message);
        return null;
      }
    },
    { what: 'the retry to be accepted', timeoutMs: 90_000, intervalMs: 250 },
  );
  t.regex(accepted, /^250 /);
  t.true(failures.every((f) => /^4\d\d /.test(f)), failures.join('\n'));

  const ack = await ackTo(h, 'ada@uni.example');
  t.is(ack.parsed.inReplyTo, messageId);
  t.is(ack.parsed.subject, '[CIE#100001] Sent while the database was down');
  const tickets = await h.tickets();
  t.deepEqual(tickets.map((x) => x.subject), ['Sent while the database was down']);
  t.deepEqual((await h.articles(100001)).map((a) => a.messageId), [messageId]);
});

const swaksInstalled = onPath('swaks');
(swaksInstalled ? test : test.skip)(
  swaksInstalled ? 'swaks delivers a mail that becomes an acknowledged ticket' : 'swaks delivers a mail that becomes an acknowledged ticket (SKIPPED: swaks is not on PATH)',
  async (t) => {
    const h = await startTestHelpgate(t, { db: freshDatabase() });
    const args = ['--server', `127.0.0.1:${h.hg.smtp.port}`, '--to', HELPDESK, '--from', 'someone@example.org', '--header', 'Subject: Cannot upload DICOM'];
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('swaks', args, { timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      });
    });
    t.is(run.code, 0, `${run.stdout}\n${run.stderr}`);
    t.regex(run.stdout, /^ *<- +250 .*queued as/m, 'the DATA answer is 250');
    const ack = await ackTo(h, 'someone@example.org');
    t.is(ack.parsed.subject, '[CIE#100001] Cannot upload DICOM');
    const tickets = await h.tickets();
    t.deepEqual(
      tickets.map((x) => [x.number, x.subject, x.requester.address]),
      [[100001, 'Cannot upload DICOM', 'someone@example.org']],
    );
  },
);
