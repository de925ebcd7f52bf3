import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { InboxItem } from '../src/db/models/inbox.ts';
import type { IntakeStatus } from '../src/db/models/intake.ts';
import { cliDatabaseEnv, runCli } from './helpers/cli.ts';
import { databasePerTest } from './helpers/database-per-test.ts';
import { Dovecot } from './helpers/dovecot.ts';
import { FIRST_LINE, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { articlesByMessageId, composeMails, sha256, writeImapConfig, type TestMail, type TestMailbox } from './helpers/imap-flow.ts';
import { quiet } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';

const database = databasePerTest(test);
const USERS = ['move', 'seen', 'delete', 'toolarge', 'uidvalidity', 'wrongpass'].map((name) => ({ name, password: 'secret' }));
let dovecot: Dovecot;
const dir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-imap-test-'));

test.before(async () => {
  dovecot = await new Dovecot(USERS).start();
});
test.after.always(async () => {
  await dovecot?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** Environment of a test helpgate reading mailboxes: short leases, retries and deadlines. */
const IMAP_ENV = { IMAP_LEASE_SECONDS: '5', IMAP_RETRY_MAX_SECONDS: '2', IMAP_AUTH_RETRY_SECONDS: '1', IMAP_COMMAND_TIMEOUT_SECONDS: '10', IMAP_BATCH: '20' };

async function helpgateOn(t: ExecutionContext, mailboxes: TestMailbox[], env: Record<string, string> = {}, members = false): Promise<TestHelpgate> {
  return startTestHelpgate(t, { db: await database(), env: { HELPGATE_CONFIG: writeImapConfig(dir, dovecot, mailboxes, { members }), ...IMAP_ENV, ...env } });
}

async function waitForArticles(h: TestHelpgate, mails: TestMail[]): Promise<Map<string, number>> {
  return until(
    async () => {
      const counts = await articlesByMessageId(h.hg.store);
      return mails.every((m) => counts.has(m.messageId)) ? counts : null;
    },
    { what: `articles for ${mails.length} mails`, timeoutMs: 90_000, intervalMs: 200 },
  );
}

const isAck = (m: { header(name: string): string | null }) => m.header('auto-submitted') === 'auto-replied';

/**
 * Distinct acknowledgements (by Message-ID) of each mail. The relay may receive one twice
 * when an outbox lease lapses on a loaded machine (SMTP's at-least-once, the same message);
 * helpgate must never make a second one.
 */
function acksOf(h: TestHelpgate, mails: TestMail[]): number[] {
  return mails.map((m) => new Set(h.relay.mails.filter((x) => isAck(x) && x.parsed.inReplyTo === m.messageId && x.envelope.rcptTo.includes(m.from)).map((x) => x.parsed.messageId)).size);
}

test('a mail appended to the watched mailbox becomes a ticket, is acknowledged and notified, and is then moved to Processed', async (t) => {
  const h = await helpgateOn(t, [{ user: 'move', passwordEnv: 'TEST_IMAP_SECRET' }], { TEST_IMAP_SECRET: 'secret' }, true);
  // One mail waiting before helpgate looks, two arriving while it idles.
  const [first, ...later] = composeMails(3);
  await dovecot.append('move', 'INBOX', [first!.raw]);
  await waitForArticles(h, [first!]);
  await dovecot.append('move', 'INBOX', later.map((m) => m.raw));
  const mails = [first!, ...later];
  const counts = await waitForArticles(h, mails);
  await quiet(h);
  t.deepEqual(acksOf(h, mails), [1, 1, 1], 'one acknowledgement per mail');
  for (const m of mails) {
    t.is(counts.get(m.messageId), 1, `articles of ${m.messageId}`);
    for (const agent of FIRST_LINE) t.is(new Set(h.relay.mails.filter((x) => x.envelope.rcptTo.includes(agent) && x.parsed.inReplyTo === m.messageId).map((x) => x.parsed.messageId)).size, 1, `notifications to ${agent}`);
  }
  // Stored byte for byte, with the mailbox as its source.
  const items = await h.hg.store.models.Inbox.find({ source: 'imap' }).lean<InboxItem[]>();
  t.deepEqual(items.map((i) => i.rawSha256).sort(), mails.map((m) => sha256(m.raw)).sort());
  t.true(items.every((i) => i.envelope.mailbox === 'help' && i.state === 'done'));
  await until(async () => (await dovecot.list('move', 'INBOX')).length === 0, { what: 'INBOX to be emptied' });
  t.deepEqual((await dovecot.list('move', 'Processed')).map((m) => m.messageId).sort(), mails.map((m) => m.messageId).sort());
});

test('in \\Seen mode a stored mail stays in the folder, flagged \\Seen, and is read once', async (t) => {
  const h = await helpgateOn(t, [{ user: 'seen', afterStore: 'seen' }]);
  const mails = composeMails(3);
  await dovecot.append('seen', 'INBOX', mails.map((m) => m.raw));
  const counts = await waitForArticles(h, mails);
  await until(async () => (await dovecot.list('seen', 'INBOX')).every((m) => m.flags.includes('\\Seen')), { what: 'the mails to be flagged \\Seen' });
  // One more arrives after the others were flagged: only it is read.
  const [extra] = composeMails(1);
  await dovecot.append('seen', 'INBOX', [extra!.raw]);
  await waitForArticles(h, [extra!]);
  await quiet(h);
  const inbox = await dovecot.list('seen', 'INBOX');
  t.is(inbox.length, 4);
  await until(async () => (await dovecot.list('seen', 'INBOX')).every((m) => m.flags.includes('\\Seen')), { what: 'the last mail to be flagged \\Seen' });
  t.is(await h.hg.store.models.Inbox.countDocuments({ source: 'imap' }), 4);
  for (const m of [...mails, extra!]) t.is((await articlesByMessageId(h.hg.store)).get(m.messageId), 1);
  t.is(counts.size, 3);
  t.deepEqual(acksOf(h, [...mails, extra!]), [1, 1, 1, 1]);
  t.deepEqual(await dovecot.list('seen', 'Processed'), []);
  // Nothing left to do: the reader idles (it does not keep re-reading the flagged mails).
  const { IntakeStatus } = h.hg.store.models;
  await until(async () => (await IntakeStatus.findById('imap:help').lean<IntakeStatus>())?.state === 'idle', { what: 'the reader to idle', timeoutMs: 30_000 });
});

test('in delete mode a stored mail is removed from the mailbox', async (t) => {
  const h = await helpgateOn(t, [{ user: 'delete', afterStore: 'delete' }]);
  const mails = composeMails(3);
  await dovecot.append('delete', 'INBOX', mails.map((m) => m.raw));
  const counts = await waitForArticles(h, mails);
  await until(async () => (await dovecot.list('delete', 'INBOX')).length === 0, { what: 'INBOX to be emptied' });
  await quiet(h);
  for (const m of mails) t.is(counts.get(m.messageId), 1);
  t.deepEqual(acksOf(h, mails), [1, 1, 1]);
  t.deepEqual(await dovecot.list('delete', 'Processed'), []);
});

test('a mail over MAX_MESSAGE_SIZE is moved to "Too large", shown by `helpgate inbox`, and its sender is told once', async (t) => {
  const h = await helpgateOn(t, [{ user: 'toolarge' }], { MAX_MESSAGE_SIZE: '8KB' });
  const [small] = composeMails(1);
  const [big] = composeMails(1, { bodyBytes: 20_000 });
  // The big one twice (a user's client uploaded it again): still one notice.
  await dovecot.append('toolarge', 'INBOX', [big!.raw, small!.raw, big!.raw]);
  await waitForArticles(h, [small!]);
  const { Inbox, IntakeNotice, Outbox } = h.hg.store.models;
  await until(async () => (await Inbox.countDocuments({ state: 'ignored' })) === 2 && (await IntakeNotice.countDocuments({})) === 0, { what: 'both copies recorded and answered' });
  await quiet(h);
  const notices = h.relay.mails.filter((m) => m.envelope.rcptTo.includes(big!.from));
  t.is(new Set(notices.map((m) => m.parsed.messageId)).size, 1, 'one notice to the sender of the big mail');
  t.regex(notices[0]!.parsed.subject, /too large/i);
  t.is(notices[0]!.parsed.inReplyTo, big!.messageId);
  t.is(notices[0]!.header('auto-submitted'), 'auto-replied');
  t.is(await Outbox.countDocuments({ kind: 'too-large' }), 1);
  t.is((await articlesByMessageId(h.hg.store)).get(big!.messageId), undefined, 'no article for the big mail');
  await until(async () => (await dovecot.list('toolarge', 'INBOX')).length === 0, { what: 'INBOX to be emptied' });
  t.deepEqual((await dovecot.list('toolarge', 'Too large')).map((m) => m.messageId), [big!.messageId, big!.messageId]);
  t.deepEqual((await dovecot.list('toolarge', 'Processed')).map((m) => m.messageId), [small!.messageId]);

  const listed = await runCli(['inbox'], { env: cliDatabaseEnv(h.db) });
  t.is(listed.code, 0, listed.stderr);
  t.regex(listed.stdout, /ignored\s+imap .*too large: \d+ bytes, MAX_MESSAGE_SIZE is 8192; moved to the folder "Too large"/);
});

test('a UIDVALIDITY reset (the folder recreated with the same mails) makes no duplicate article', async (t) => {
  const h = await helpgateOn(t, [{ user: 'uidvalidity', folder: 'Support', afterStore: 'seen' }]);
  const mails = composeMails(4);
  await dovecot.append('uidvalidity', 'Support', mails.map((m) => m.raw));
  await waitForArticles(h, mails);
  await quiet(h);
  const { ImapCheckpoint, Inbox } = h.hg.store.models;
  const before = await until(() => ImapCheckpoint.findById('help').lean<{ uidValidity: string; lastUid: number }>().then((c) => (c?.lastUid === 4 ? c : null)));

  await dovecot.recreate('uidvalidity', 'Support');
  await dovecot.append('uidvalidity', 'Support', mails.map((m) => m.raw));
  // The reader notices the new UIDVALIDITY, reads all four again and flags them.
  await until(async () => {
    const cp = await ImapCheckpoint.findById('help').lean<{ uidValidity: string; lastUid: number }>();
    return cp?.uidValidity !== before.uidValidity && cp?.lastUid === 4;
  }, { what: 'the checkpoint under the new UIDVALIDITY', timeoutMs: 90_000 });
  await until(async () => (await dovecot.list('uidvalidity', 'Support')).every((m) => m.flags.includes('\\Seen')), { what: 'the new copies flagged' });
  await quiet(h);
  t.is(await Inbox.countDocuments({ source: 'imap' }), 8, 'each mail stored again under the new UIDVALIDITY');
  const counts = await articlesByMessageId(h.hg.store);
  for (const m of mails) t.is(counts.get(m.messageId), 1, `articles of ${m.messageId}`);
  t.is(await h.hg.store.models.Ticket.countDocuments({}), 4);
  t.deepEqual(acksOf(h, mails), [1, 1, 1, 1], 'one acknowledgement per mail');
});

test('a wrong password: a clear error in the log and in `helpgate status`, retried slowly, no tight loop', async (t) => {
  const started = Date.now();
  const h = await helpgateOn(t, [{ user: 'wrongpass', password: 'not-the-password' }]);
  const { IntakeStatus } = h.hg.store.models;
  const status = await until(
    async () => {
      const s = await IntakeStatus.findById('imap:help').lean<IntakeStatus>();
      return s && s.state === 'auth-failed' && s.failures >= 3 ? s : null;
    },
    { what: 'three refused logins recorded', timeoutMs: 90_000, intervalMs: 200 },
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}; status: ${JSON.stringify(await IntakeStatus.findById('imap:help').lean())}; Dovecot: ${dovecot.logLines(/wrongpass/).slice(-5).join(' | ')}`);
  });
  const elapsedMs = Date.now() - started;
  t.regex(status.lastError ?? '', /login refused for wrongpass at 127\.0\.0\.1: .*AUTHENTICATIONFAILED|login refused for wrongpass at 127\.0\.0\.1: .*[Aa]uthentication failed/);
  // IMAP_AUTH_RETRY_SECONDS=1: at most one attempt per second (plus the first), as Dovecot counted them.
  const attempts = dovecot.refusedLogins('wrongpass');
  t.true(attempts >= 3, `attempts seen by Dovecot: ${attempts}`);
  t.true(attempts <= Math.ceil(elapsedMs / 1000) + 1, `attempts seen by Dovecot: ${attempts} in ${elapsedMs} ms`);

  const shown = await runCli(['status'], { env: { ...cliDatabaseEnv(h.db), HELPGATE_CONFIG: h.config.configFile } });
  t.is(shown.code, 0, shown.stderr);
  t.regex(shown.stdout, /imap:help\n\s+state\s+auth-failed/);
  t.regex(shown.stdout, /last error\s+\S+ login refused for wrongpass at 127\.0\.0\.1/);
  await h.stop();
  // Stopped: no more attempts.
  const after = dovecot.refusedLogins('wrongpass');
  t.is(dovecot.refusedLogins('wrongpass'), after);
});
