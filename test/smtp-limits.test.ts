import test from 'ava';
import { startTestDatabase, uniqueDbName, type TestDatabase } from './helpers/database.ts';
import { HELPDESK, startTestHelpgate } from './helpers/helpgate.ts';
import { SmtpDialogue, type SmtpReply } from './helpers/smtp-dialogue.ts';
import { until } from './helpers/wait.ts';

let shared: TestDatabase;
test.before(async () => {
  shared = await startTestDatabase();
});
test.after.always(async () => {
  await shared?.cleanup();
});

const freshDatabase = (): TestDatabase => ({ ...shared, server: shared.server, dbName: uniqueDbName('smtp-limits') });

test('every reply carries an enhanced status code, and the greeting names the server once', async (t) => {
  const h = await startTestHelpgate(t, { db: freshDatabase(), env: { MAX_MESSAGE_SIZE: '64KB' } });
  const { dialogue, greeting } = await SmtpDialogue.open(h.hg.smtp.port);
  t.teardown(() => dialogue.close());
  t.is(greeting.text, '220 helpdesk.localhost ESMTP helpgate');
  const ehlo = await dialogue.command('EHLO client.example');
  t.is(ehlo.code, 250);
  t.true(ehlo.text.split('\n').includes('250-ENHANCEDSTATUSCODES'), ehlo.text);
  const line = (r: SmtpReply) => r.text.split('\n').at(-1)!;
  t.regex(line(await dialogue.command('MAIL FROM:<a@uni.example> SIZE=999999999')), /^552 5\.3\.4 /);
  t.regex(line(await dialogue.command('MAIL FROM:<a@uni.example>')), /^250 2\.1\.0 /);
  t.regex(line(await dialogue.command('RCPT TO:<someone@elsewhere.example>')), /^550 5\.1\.1 <someone@elsewhere\.example>: Recipient address rejected/);
  t.regex(line(await dialogue.command(`RCPT TO:<${HELPDESK}>`)), /^250 2\.1\.5 /);
  t.regex(line(await dialogue.command('NOOP')), /^250 2\.0\.0 /);
  t.regex(line(await dialogue.command('DATA')), /^354 /);
  t.regex(line(await dialogue.message(`From: a@uni.example\nTo: ${HELPDESK}\nSubject: Codes\n\nHello.\n`)), /^250 2\.6\.0 Ok: queued as [0-9a-f]{24}$/);
  t.regex(line(await dialogue.command('RSET')), /^250 2\.0\.0 /);
  t.regex(line(await dialogue.command('DATA')), /^503 5\.5\.1 /);
  t.regex(line(await dialogue.command('FROB')), /^500 5\.5\.2 /);
  t.regex(line(await dialogue.command('QUIT')), /^221 2\.0\.0 /);
});

test('200 idle connections from one address do not stop another address from getting 220 and 250', async (t) => {
  // The default limit per client address (20), not the test helpers' higher one.
  const h = await startTestHelpgate(t, { db: freshDatabase(), env: { SMTP_MAX_CLIENTS_PER_IP: undefined } });
  const port = h.hg.smtp.port;
  // 200 sessions from 127.0.0.1 that never send a command (the attack in the issue).
  const floods = await Promise.all(
    Array.from({ length: 200 }, async () => {
      try {
        const { dialogue, greeting } = await SmtpDialogue.open(port, '127.0.0.1', '127.0.0.1');
        return { dialogue, greeting };
      } catch (err) {
        return { dialogue: null, greeting: { code: 0, text: String(err) } };
      }
    }),
  );
  t.teardown(() => floods.forEach((f) => f.dialogue?.close()));
  const greeted = floods.filter((f) => f.greeting.code === 220).length;
  const refused = floods.filter((f) => f.greeting.code === 421);
  t.is(greeted, 20, 'SMTP_MAX_CLIENTS_PER_IP (20) sessions are served');
  t.is(refused.length, 180);
  t.regex(refused[0]!.greeting.text, /^421 4\.7\.0 Too many connections from (::ffff:)?127\.0\.0\.1/);

  // Another address is served at once and its mail is stored.
  const { dialogue: other, greeting } = await SmtpDialogue.open(port, '127.0.0.1', '127.0.0.2');
  t.teardown(() => other.close());
  t.is(greeting.code, 220);
  await other.command('EHLO other.example');
  t.is((await other.command('MAIL FROM:<b@other.example>')).code, 250);
  t.is((await other.command(`RCPT TO:<${HELPDESK}>`)).code, 250);
  t.is((await other.command('DATA')).code, 354);
  const stored = await other.message(`From: b@other.example\nTo: ${HELPDESK}\nSubject: Still served\n\nHello.\n`);
  t.is(stored.code, 250, stored.text);
  await until(async () => (await h.inbox()).length === 1, { what: 'the mail from 127.0.0.2 to be stored' });

  // Once the flood's sessions end, its address is served again.
  floods.forEach((f) => f.dialogue?.close());
  await until(
    async () => {
      const { dialogue, greeting: g } = await SmtpDialogue.open(port, '127.0.0.1', '127.0.0.1');
      dialogue.close();
      return g.code === 220;
    },
    { what: '127.0.0.1 to be served again' },
  );
});

test('a session that sends no mail command in time is closed with 421, NOOPs or not', async (t) => {
  const h = await startTestHelpgate(t, { db: freshDatabase(), env: { SMTP_IDLE_SECONDS: '1' } });
  const { dialogue } = await SmtpDialogue.open(h.hg.smtp.port);
  t.teardown(() => dialogue.close());
  await dialogue.command('EHLO idle.example');
  const closed = dialogue.closedByServer();
  let last: SmtpReply | null = null;
  let stop = false;
  void closed.then(() => (stop = true));
  // A client that keeps the session open with a NOOP every 200 ms, as the attack does every 55 s.
  while (!stop) {
    try {
      last = await dialogue.command('NOOP');
    } catch {
      break;
    }
    if (last.code !== 250) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await closed;
  // The 421 arrives between two NOOPs, unasked: it is the last line the server sent.
  if (last?.code === 250) last = await dialogue.reply();
  t.regex(last!.text, /^421 4\.4\.2 Idle for 1 s without a mail transaction/);
});

test('a session past its limit of commands that send no mail is closed with 421', async (t) => {
  const h = await startTestHelpgate(t, { db: freshDatabase(), env: { SMTP_MAX_JUNK_COMMANDS: '5' } });
  const { dialogue } = await SmtpDialogue.open(h.hg.smtp.port);
  t.teardown(() => dialogue.close());
  // EHLO is the first of the five.
  await dialogue.command('EHLO junk.example');
  for (let i = 0; i < 4; i++) t.is((await dialogue.command('NOOP')).code, 250);
  const refused = await dialogue.command('NOOP');
  t.regex(refused.text, /^421 4\.7\.0 Too many commands that send no mail \(5\)/);
  await dialogue.closedByServer();
  // Mail transactions do not count: a session delivering many mails is not cut.
  const { dialogue: busy } = await SmtpDialogue.open(h.hg.smtp.port);
  t.teardown(() => busy.close());
  await busy.command('EHLO busy.example');
  for (let i = 0; i < 6; i++) {
    t.is((await busy.command('MAIL FROM:<c@uni.example>')).code, 250);
    t.is((await busy.command(`RCPT TO:<${HELPDESK}>`)).code, 250);
    t.is((await busy.command('DATA')).code, 354);
    t.is((await busy.message(`From: c@uni.example\nTo: ${HELPDESK}\nSubject: Mail ${i}\n\nHello.\n`)).code, 250);
  }
});
