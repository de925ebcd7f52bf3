import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { projectRoot } from '../src/config/load.ts';
import { freePort } from '../src/db/embedded.ts';
import type { Article } from '../src/db/models/article.ts';
import type { InboxItem } from '../src/db/models/inbox.ts';
import type { OutboxMail } from '../src/db/models/outbox.ts';
import type { Ticket } from '../src/db/models/ticket.ts';
import { openStore } from '../src/db/store.ts';
import { cliDatabaseEnv, runCli, uriWithDatabase } from './helpers/cli.ts';
import { databasePerTest } from './helpers/database-per-test.ts';
import { FIRST_LINE, HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { fixture, quiet } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';

const database = databasePerTest(test);
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** MONGODB_URI at a port where nothing listens (it was free a moment ago). */
async function deadDatabaseEnv(): Promise<Record<string, string>> {
  return { MONGODB_URI: `mongodb://127.0.0.1:${await freePort()}/helpgate`, MONGODB_TIMEOUT_MS: '1000' };
}

function json<T>(stdout: string): T {
  return JSON.parse(stdout) as T;
}

function ackTo(h: TestHelpgate, address: string) {
  return h.relay.waitFor((m) => m.envelope.rcptTo.includes(address) && m.header('auto-submitted') === 'auto-replied', `the acknowledgement to ${address}`, 120_000);
}

test('parse prints the parsed message as JSON and needs no database', async (t) => {
  const result = await runCli(['parse'], { stdin: fixture('reply-with-cc-html-and-attachment.eml'), env: await deadDatabaseEnv() });
  t.is(result.code, 0, result.stderr);
  t.is(result.stderr, '');
  const log = Buffer.from('10:02:11 upload started\n10:02:40 study 1.2.840.113619 rejected: 413\n', 'utf8');
  const { contentHash, ...parsed } = json<Record<string, unknown>>(result.stdout);
  t.regex(String(contentHash), /^[0-9a-f]{64}$/);
  t.deepEqual(parsed, {
    from: { address: 'ada@uni.example', name: 'Ada Researcher' },
    to: [
      { address: 'help@helpdesk.localhost', name: '' },
      { address: 'bob@uni.example', name: 'Bob Colleague' },
    ],
    cc: [{ address: 'carol@hospital.example', name: 'Carol' }],
    replyTo: [{ address: 'ada.lab@uni.example', name: '' }],
    subject: 'Re: [CIE#100001] Upload fällt aus',
    messageId: '<reply-2.ada@uni.example>',
    inReplyTo: '<ack-1.x7@helpdesk.localhost>',
    references: ['<request-1.ada@uni.example>', '<ack-1.x7@helpdesk.localhost>'],
    date: '2026-03-03T09:15:00.000Z',
    text: 'The upload still fails; the log is attached.\nGrüße, Ada\n',
    html: '<p>The upload still fails; the log is attached.</p><p>Grüße, Ada</p>',
    attachments: [{ filename: 'upload.log', contentType: 'text/plain', size: log.length, sha256: sha256(log), contentId: null, inline: false }],
    authResults: 'mx.helpdesk.localhost; spf=pass smtp.mailfrom=uni.example; dkim=pass header.d=uni.example',
  });
});

test('ingest stores a mail (exit 0) and a helpgate on that database turns it into a ticket', async (t) => {
  const db = await database();
  const raw = fixture('new-request-via-pipe.eml');
  const result = await runCli(['ingest'], { stdin: raw, env: cliDatabaseEnv(db) });
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^stored as [0-9a-f]{24}\n$/);

  const h = await startTestHelpgate(t, { db });
  const ack = await ackTo(h, 'pia@uni-pipe.example');
  t.is(ack.parsed.subject, '[CIE#100001] Cannot open the federated search');
  t.is(ack.parsed.inReplyTo, '<new-request.pia@uni-pipe.example>');
  // The acknowledgement can be out before the worker has marked the item done.
  await h.settle();
  const [item] = await h.inbox();
  t.like(item, { source: 'pipe', state: 'done', ticketNumber: 100001, rawSha256: sha256(raw) });
  // Without -f and recipients the message is taken as mail to the helpdesk from an unknown envelope sender.
  t.deepEqual({ mailFrom: item!.envelope.mailFrom, rcptTo: item!.envelope.rcptTo }, { mailFrom: null, rcptTo: [HELPDESK] });
  const [article] = await h.articles(100001);
  t.is(article!.text, 'The federated search page stays blank since this morning.\n');
});

test('the same mail ingested twice makes one ticket with one article and one acknowledgement', async (t) => {
  const db = await database();
  const raw = fixture('new-request-via-pipe.eml');
  for (let i = 0; i < 2; i++) {
    const result = await runCli(['ingest'], { stdin: raw, env: cliDatabaseEnv(db) });
    t.is(result.code, 0, result.stderr);
  }
  const h = await startTestHelpgate(t, { db });
  await until(async () => {
    const items = await h.inbox();
    return items.length === 2 && items.every((i) => i.state === 'done');
  }, { what: 'both stored copies to be processed', timeoutMs: 120_000 });
  await quiet(h);
  t.deepEqual(
    (await h.tickets()).map((x) => x.number),
    [100001],
  );
  t.is((await h.articles(100001)).length, 1);
  t.is(h.relay.to('pia@uni-pipe.example').length, 1);
  for (const member of FIRST_LINE) t.is(h.relay.to(member).length, 1, member);
});

test('ingest -f SENDER -- RECIPIENT stores the envelope, and inbox --json shows it and its processing', async (t) => {
  const db = await database();
  const env = cliDatabaseEnv(db);
  const stored = await runCli(['ingest', '-f', 'pia@uni-pipe.example', '--', HELPDESK], { stdin: fixture('new-request-via-pipe.eml'), env });
  t.is(stored.code, 0, stored.stderr);
  const id = /^stored as ([0-9a-f]{24})$/m.exec(stored.stdout)?.[1];
  t.truthy(id);

  const before = await runCli(['inbox', '--json'], { env });
  t.is(before.code, 0, before.stderr);
  const [item] = json<InboxItem[]>(before.stdout);
  t.like(item, { _id: id, source: 'pipe', state: 'pending', envelope: { mailFrom: 'pia@uni-pipe.example', rcptTo: [HELPDESK] } });

  const h = await startTestHelpgate(t, { db });
  await ackTo(h, 'pia@uni-pipe.example');
  await h.settle();
  const after = await runCli(['inbox', '--json'], { env });
  t.is(after.code, 0, after.stderr);
  t.like(json<InboxItem[]>(after.stdout)[0], { _id: id, state: 'done', ticketNumber: 100001 });
});

test('ingest exits 75 (try again later) with a message on stderr when the database is unreachable', async (t) => {
  const result = await runCli(['ingest', '-f', 'pia@uni-pipe.example', '--', HELPDESK], { stdin: fixture('new-request-via-pipe.eml'), env: await deadDatabaseEnv() });
  t.is(result.code, 75);
  t.is(result.stdout, '');
  t.regex(result.stderr, /^helpgate: .*cannot connect to the database/);
});

test('tickets list --json and tickets show NUMBER --json show the ticket and its articles', async (t) => {
  const db = await database();
  const h = await startTestHelpgate(t, { db });
  const report = Buffer.from('%PDF-1.4\n% scan report\n', 'latin1');
  const sent = await h.send({
    from: 'Quinn Query <quinn@uni-cli.example>',
    to: HELPDESK,
    cc: 'ralf@uni-cli.example',
    subject: 'Série 7 manquante',
    text: 'Series 7 of study 42 is missing.',
    attachments: [{ filename: 'scan-report.pdf', content: report, contentType: 'application/pdf' }],
  });
  await ackTo(h, 'quinn@uni-cli.example');
  const env = cliDatabaseEnv(db);

  const list = await runCli(['tickets', 'list', '--json'], { env });
  t.is(list.code, 0, list.stderr);
  const tickets = json<Ticket[]>(list.stdout);
  t.is(tickets.length, 1);
  t.like(tickets[0], { number: 100001, subject: 'Série 7 manquante', state: 'new', su: 'first-line', requester: { address: 'quinn@uni-cli.example', name: 'Quinn Query' }, participants: ['ralf@uni-cli.example'] });

  const show = await runCli(['tickets', 'show', '100001', '--json'], { env });
  t.is(show.code, 0, show.stderr);
  const shown = json<Ticket & { articles: Article[] }>(show.stdout);
  t.like(shown, { number: 100001, subject: 'Série 7 manquante' });
  t.is(shown.articles.length, 1);
  const [article] = shown.articles;
  t.like(article, { ticketNumber: 100001, direction: 'in', authorRole: 'requester', messageId: sent.messageId, from: { address: 'quinn@uni-cli.example' }, automated: null });
  t.is(article!.text.trim(), 'Series 7 of study 42 is missing.');
  t.deepEqual(
    article!.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, size: a.size, sha256: a.sha256 })),
    [{ filename: 'scan-report.pdf', contentType: 'application/pdf', size: report.length, sha256: sha256(report) }],
  );

  const missing = await runCli(['tickets', 'show', '999999', '--json'], { env });
  t.is(missing.code, 1);
  t.regex(missing.stderr, /ticket 999999 not found/);

  // `helpgate tickets list | head`: a reader that leaves early ends the command quietly.
  const cut = await runCli(['tickets', 'list'], { env, closeStdout: true });
  t.is(cut.code, 0, cut.stderr);
  t.is(cut.stderr, '');
});

test('outbox --json lists mail still queued (with its last error) and mail sent', async (t) => {
  const db = await database();
  // A long backoff keeps a deferred mail queued for the rest of the test.
  const h = await startTestHelpgate(t, { db, env: { OUTBOX_BACKOFF_SECONDS: '3600' } });
  const requester = 'sam@uni-cli.example';
  h.relay.verdict = ({ rcptTo }) => (rcptTo.includes(requester) ? { code: 451, message: '4.7.1 Greylisted, try again later' } : null);
  await h.send({ from: requester, to: HELPDESK, subject: 'Mailbox greylists', text: 'Will the answer reach me?' });
  for (const member of FIRST_LINE) await h.relay.waitFor((m) => m.envelope.rcptTo.includes(member), `the notification to ${member}`, 120_000);
  const { Outbox } = h.hg.store.models;
  await until(() => Outbox.exists({ kind: 'ack', lastError: { $ne: null } }), { what: 'the acknowledgement to be deferred', timeoutMs: 120_000 });

  const result = await runCli(['outbox', '--json'], { env: cliDatabaseEnv(db) });
  t.is(result.code, 0, result.stderr);
  const mails = json<OutboxMail[]>(result.stdout);
  const summary = mails.map((m) => ({ kind: m.kind, to: m.to, state: m.state, subject: m.subject })).sort((a, b) => a.to[0]!.localeCompare(b.to[0]!));
  t.deepEqual(summary, [
    { kind: 'notify-new', to: [FIRST_LINE[1]!], state: 'sent', subject: '[CIE#100001] Mailbox greylists' },
    { kind: 'notify-new', to: [FIRST_LINE[0]!], state: 'sent', subject: '[CIE#100001] Mailbox greylists' },
    { kind: 'ack', to: [requester], state: 'queued', subject: '[CIE#100001] Mailbox greylists' },
  ].sort((a, b) => a.to[0]!.localeCompare(b.to[0]!)));
  const ack = mails.find((m) => m.kind === 'ack')!;
  t.regex(ack.lastError ?? '', /451/);
  t.is(ack.attempts, 1);
  t.false('raw' in ack, 'the listing leaves the MIME source out');
});

test('inbox retry ID puts a quarantined message back and helpgate then processes it', async (t) => {
  const db = await database();
  const env = cliDatabaseEnv(db);
  const stored = await runCli(['ingest', '-f', 'pia@uni-pipe.example'], { stdin: fixture('new-request-via-pipe.eml'), env });
  t.is(stored.code, 0, stored.stderr);
  const id = /^stored as ([0-9a-f]{24})$/m.exec(stored.stdout)![1]!;

  // Quarantine it, as the ingest worker does after INGEST_MAX_ATTEMPTS failures.
  const store = await openStore(uriWithDatabase(db.uri, db.dbName));
  try {
    await store.models.Inbox.updateOne({ _id: id }, { $set: { state: 'quarantined', attempts: 5, lastError: 'simulated: parser crashed' } });
  } finally {
    await store.close();
  }

  const h = await startTestHelpgate(t, { db });
  // A mail sent afterwards is processed while the quarantined one is left alone.
  await h.send({ from: 'control@uni-cli.example', to: HELPDESK, subject: 'Control', text: 'An ordinary question.' });
  await ackTo(h, 'control@uni-cli.example');
  const listed = await runCli(['inbox', '--json'], { env });
  t.like(
    json<InboxItem[]>(listed.stdout).find((i) => String(i._id) === id),
    { state: 'quarantined', lastError: 'simulated: parser crashed', ticketNumber: null },
  );
  t.is(h.relay.to('pia@uni-pipe.example').length, 0);

  const retried = await runCli(['inbox', 'retry', id], { env });
  t.is(retried.code, 0, retried.stderr);
  t.is(retried.stdout, `${id} queued again\n`);
  const ack = await ackTo(h, 'pia@uni-pipe.example');
  t.is(ack.parsed.subject, '[CIE#100002] Cannot open the federated search');
  const item = await until(() => h.hg.store.models.Inbox.findOne({ _id: id, state: 'done' }).lean<InboxItem>(), { what: 'the retried message to be processed', timeoutMs: 120_000 });
  t.is(item.ticketNumber, 100002);
  t.is(item.lastError, null);
  // Recorded in the same audit log as a retry from the portal's Quarantine page.
  t.like(await h.hg.store.models.OpsEvent.findOne({ action: 'inbox.retry' }).lean(), { channel: 'cli', outcome: 'applied', target: { kind: 'inbox', id } });
});

test('outbox show ID prints a captured mail decoded: its headers, its text and the links in it (--raw: the MIME source)', async (t) => {
  const db = await database();
  // No relay: the mail is captured, as in the Quick start.
  const h = await startTestHelpgate(t, { db, env: { OUTBOUND_SMTP_URL: '' } });
  await h.send({ from: 'Zoë Quelle <zoe@uni-cli.example>', to: HELPDESK, subject: 'Überweisung der Bilddaten – wie?', text: 'How do I transfer the image data?' });
  const ack = await until(() => h.hg.store.models.Outbox.findOne({ kind: 'ack', state: 'captured' }, { raw: 0 }).lean<OutboxMail>(), { what: 'the captured acknowledgement', timeoutMs: 120_000 });
  const env = cliDatabaseEnv(db);

  const shown = await runCli(['outbox', 'show', String(ack._id)], { env });
  t.is(shown.code, 0, shown.stderr);
  const out = shown.stdout;
  t.regex(out, new RegExp(`^outbound mail ${ack._id}: ack, captured, ticket \\[CIE#100001\\], queued \\S+, captured \\S+\\n`));
  t.true(out.includes('\nSubject: [CIE#100001] Überweisung der Bilddaten – wie?\n'), out);
  t.true(out.includes('\nTo: zoe@uni-cli.example\n'), out);
  t.true(out.includes('\nAuto-Submitted: auto-replied\n'), out);
  t.true(out.includes('thank you for contacting the Cancer Image Europe Helpdesk. Your request has been\nreceived and registered as ticket 100001:'), out);
  t.true(out.endsWith('\nLinks in this mail:\n  [1] http://localhost:3000/tickets/100001\n'), out);
  t.false(/=3D|=C3|=\r?\n|quoted-printable|base64/i.test(out), 'nothing left encoded');

  const raw = await runCli(['outbox', 'show', String(ack._id), '--raw'], { env });
  t.is(raw.code, 0, raw.stderr);
  t.regex(raw.stdout, /^Content-Type: multipart\/alternative;/m);
  t.regex(raw.stdout, /Subject: =\?UTF-8\?/, 'the source as it would have been sent');

  const missing = await runCli(['outbox', 'show', 'ffffffffffffffffffffffff'], { env });
  t.is(missing.code, 1);
  t.is(missing.stderr, 'helpgate: outbound mail ffffffffffffffffffffffff not found\n');
});

test('outbox show with something that is no id says so at once (exit 64), without a database error', async (t) => {
  const result = await runCli(['outbox', 'show', 'abc'], { env: await deadDatabaseEnv() });
  t.is(result.code, 64);
  t.is(result.stdout, '');
  t.is(result.stderr, 'helpgate: "abc" is not an outbound mail id: ids are 24 hexadecimal digits, as `helpgate outbox` lists them\n');
});

test('a command with no helpgate on its data folder names the folder; with --start-database it says it started a database of its own', async (t) => {
  const refused = await runCli(['tickets', 'list']);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^helpgate: no helpgate is running on the data folder \/\S+ \(HELPGATE_DATA_DIR; when unset, \.\/data of the folder the command runs in; .*run this command with the server's HELPGATE_DATA_DIR.*--start-database/);
  const started = await runCli(['tickets', 'list', '--start-database']);
  t.is(started.code, 0, started.stderr);
  t.is(started.stdout, 'no tickets\n');
  t.regex(started.stderr, /^helpgate: no helpgate runs on the data folder \/\S+: this command started a new, empty database \(.+\) for itself and stops it when done\n$/);
});

for (const [variable, value] of [
  ['SMTP_PORT', 'abc'],
  ['TICKET_PREFIX', 'C#E'],
] as const) {
  test(`an invalid ${variable} makes a command exit 1 naming the variable (ingest: 75, so the MTA keeps the mail)`, async (t) => {
    const env = { ...(await deadDatabaseEnv()), [variable]: value };
    const result = await runCli(['tickets', 'list'], { env });
    t.is(result.code, 1);
    t.regex(result.stderr, new RegExp(`^helpgate: invalid configuration: ${variable}: `));
    t.is(result.stdout, '');
    const ingest = await runCli(['ingest'], { env, stdin: fixture('new-request-via-pipe.eml') });
    t.is(ingest.code, 75);
    t.regex(ingest.stderr, new RegExp(`invalid configuration: ${variable}: `));
  });
}

test('ingest and tickets list run from the build (dist/), which `npm install` and `npm test` make', async (t) => {
  // HELPGATE_REQUIRE_BUILD=1 refuses to fall back to the sources, so these runs prove that the
  // compiled commands work: the launcher, the lazily loaded commands, the paths to templates.
  const db = await database();
  const env = { ...cliDatabaseEnv(db), HELPGATE_REQUIRE_BUILD: '1' };
  const version = await runCli(['version'], { env });
  t.is(version.code, 0, `${version.stderr}(run \`npm run build\` first: npm test does)`);
  t.regex(version.stdout, /^helpgate \d+\.\d+\.\d+ \(running from dist\)\n$/);
  const stored = await runCli(['ingest', '-f', 'pia@uni-pipe.example', '--', HELPDESK], { stdin: fixture('new-request-via-pipe.eml'), env });
  t.is(stored.code, 0, stored.stderr);
  t.regex(stored.stdout, /^stored as [0-9a-f]{24}\n$/);
  const h = await startTestHelpgate(t, { db });
  await h.settle();
  const list = await runCli(['tickets', 'list', '--json'], { env });
  t.is(list.code, 0, list.stderr);
  t.deepEqual(json<{ number: number; subject: string }[]>(list.stdout).map((x) => [x.number, x.subject]), [[100001, 'Cannot open the federated search']]);
});

test('the container image layout (the Dockerfile final stage: dist/ without sources) runs from the build', async (t) => {
  // Lays out what the Dockerfile's final stage copies (read from the Dockerfile itself), with
  // the project's node_modules standing in for the production install, and runs commands there.
  const image = mkdtempSync(path.join(os.tmpdir(), 'helpgate-image-'));
  t.teardown(() => rmSync(image, { recursive: true, force: true }));
  const dockerfile = readFileSync(path.join(projectRoot, 'Dockerfile'), 'utf8');
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const copies = [...finalStage.matchAll(/^COPY (?:--from=\w+ )?(\S+) (\S+)$/gm)].map((m) => ({ from: m[1]!.replace(/^\/app\//, ''), to: m[2]! }));
  t.true(copies.some((c) => c.from === 'dist'), 'the image copies dist/');
  for (const { from, to } of copies) {
    if (from === 'node_modules') {
      symlinkSync(path.join(projectRoot, 'node_modules'), path.join(image, 'node_modules'));
      continue;
    }
    const dir = path.dirname(from);
    const names = from.includes('*') ? readdirSync(path.join(projectRoot, dir)).filter((n) => new RegExp(`^${path.basename(from).replace('.', '\\.').replace('*', '.*')}$`).test(n)).map((n) => path.join(dir, n)) : [from];
    for (const name of names) {
      const target = to.endsWith('/') ? path.join(image, to, path.basename(name)) : path.join(image, to === './' ? name : to);
      cpSync(path.join(projectRoot, name), target, { recursive: true, preserveTimestamps: true });
    }
  }
  t.false(existsSync(path.join(image, 'src/cli/main.ts')), 'no TypeScript sources in the image');
  const run = (args: string[], stdin?: Buffer) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(image, 'src/cli/helpgate.mjs'), ...args], { env: { PATH: process.env.PATH ?? '', HELPGATE_REQUIRE_BUILD: '1', LOG_LEVEL: 'silent', HELPGATE_DATA_DIR: path.join(image, 'data') }, cwd: image });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(stdin ?? '');
    });
  const version = await run(['version']);
  t.is(version.code, 0, version.stderr);
  t.regex(version.stdout, /\(running from dist\)/);
  const parsed = await run(['parse'], fixture('new-request-via-pipe.eml'));
  t.is(parsed.code, 0, parsed.stderr);
  t.is(json<{ subject: string }>(parsed.stdout).subject, 'Cannot open the federated search');
});
