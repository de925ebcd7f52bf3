import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { unzipSync, strFromU8 } from 'fflate';
import type { Page } from 'playwright-core';
import { exampleConfigPath, loadConfig } from '../src/config/load.ts';
import { freePort } from '../src/db/embedded.ts';
import type { Article } from '../src/db/models/article.ts';
import type { InboxItem } from '../src/db/models/inbox.ts';
import type { OutboxMail } from '../src/db/models/outbox.ts';
import type { ErasureRequest } from '../src/db/models/privacy.ts';
import { expireHeldMail } from '../src/domain/identity/held.ts';
import { runDailyPrivacyJob } from '../src/domain/privacy/daily.ts';
import { registry } from '../src/log/metrics.ts';
import { startBrowser, screenshot, checkAccessibility, type TestBrowser, signInWithDevAai } from './helpers/browser.ts';
import { cliDatabaseEnv, runCli } from './helpers/cli.ts';
import { FIRST_LINE, HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { quiet, ticketOf } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';

const DAY = 86_400_000;
const RITA = 'rita@university.example';
const PETRA = 'petra@institute.example';
const ERIN = 'erin@clinic.example';
const ERIN_SUB = 'e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1@lifescience-ri.eu';
const EUCAIM = 'urn:geant:lifescience-ri.eu:group:EUCAIM#aai.lifescience-ri.eu';

/** The dev LS AAI's people of this file: a requester, a participant, someone who asks to be erased, and a First Line agent. */
function usersFile(dir: string): string {
  const person = (username: string, sub: string, given: string, family: string, email: string) =>
    `  - username: ${username}\n    password: ${username}-pass\n    about: ${given} of the privacy tests\n    sub: ${sub}\n    name: ${given} ${family}\n    given_name: ${given}\n` +
    `    family_name: ${family}\n    email: ${email}\n    email_verified: true\n    entitlements: ["${EUCAIM}"]\n    affiliations: [member@${email.split('@')[1]}]\n    home_organization: ${email.split('@')[1]}\n`;
  const file = path.join(dir, 'users.yaml');
  writeFileSync(
    file,
    'users:\n' +
      person('rita', 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1@lifescience-ri.eu', 'Rita', 'Requester', RITA) +
      person('petra', 'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2@lifescience-ri.eu', 'Petra', 'Participant', PETRA) +
      person('erin', ERIN_SUB, 'Erin', 'Example', ERIN) +
      person('fl-agent', 'c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3@lifescience-ri.eu', 'Frida', 'Firstline', FIRST_LINE[0]!),
  );
  return file;
}

/** The example configuration with retention rules of its own (shorter than the defaults, and attachments of closed tickets on). */
function configFile(dir: string): string {
  const text = readFileSync(exampleConfigPath, 'utf8').replace(
    /^retention:\n(?: {2}.*\n)+/m,
    'retention:\n  rawMailDays: 30\n  heldMailDays: 10\n  outboundDays: 60\n  closedTicketAttachmentsMonths: 6\n',
  );
  if (!text.includes('closedTicketAttachmentsMonths: 6')) throw new Error('the example configuration has no retention block to replace');
  const file = path.join(dir, 'helpgate.yaml');
  writeFileSync(file, text);
  return file;
}

/** helpgate's clock: the real one, moved forward by the retention test. */
let offset = 0;
const now = () => new Date(Date.now() + offset);

let h: TestHelpgate;
let browser: TestBrowser;
let base: string;
const pages: Record<string, Page> = {};

test.before(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-privacy-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  h = await startTestHelpgate(null, {
    portal: true,
    now,
    env: { HTTP_PORT: String(port), PUBLIC_URL: base, UNBOUND_SENDERS: 'hold', DEV_AAI_USERS: usersFile(dir), HELPGATE_CONFIG: configFile(dir), ERASURE_GRACE_DAYS: '20', TIMER_INTERVAL_SECONDS: '86400' },
  });
  browser = await startBrowser();
});
test.after.always(async () => {
  await browser?.close();
  await h?.stop();
});

/** Signs in through the dev LS AAI; returns whether helpgate asked for consent. */
const signIn = (page: Page, username: string) => signInWithDevAai(page, base, username);

async function signedIn(username: string): Promise<Page> {
  if (pages[username]) return pages[username]!;
  const page = await browser.newPage();
  await signIn(page, username);
  pages[username] = page;
  return page;
}

/** Account → Download my data, as the browser saves it; the archive's files by name. */
async function download(page: Page): Promise<Record<string, Buffer>> {
  await page.goto(`${base}/account`);
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download my data' }).click()]);
  t_suggested.push(file.suggestedFilename());
  const zip = readFileSync((await file.path())!);
  return Object.fromEntries(Object.entries(unzipSync(new Uint8Array(zip))).map(([name, bytes]) => [name, Buffer.from(bytes)]));
}
const t_suggested: string[] = [];

interface ExportedData {
  identity: { sub: string; name: string } | null;
  addresses: { address: string }[];
  consents: { policyVersion: string }[];
  tickets: { number: number; yourRole: string; articles: { writtenBy: string; text: string; attachments: { filename: string; file: string | null }[] }[] }[];
  mails: { file: string | null }[];
}

/** An agent's internal note with a file, through the ticket page. */
async function internalNote(page: Page, number: number, text: string, file: { name: string; body: string }): Promise<void> {
  await page.goto(`${base}/tickets/${number}`);
  await page.getByRole('radio', { name: 'Internal note' }).check();
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByLabel('Attachments', { exact: true }).setInputFiles({ name: file.name, mimeType: 'text/plain', buffer: Buffer.from(file.body) });
  await page.getByRole('button', { name: 'Add internal note' }).click();
  await page.getByText('Your internal note was added').waitFor();
}

async function publicReply(page: Page, number: number, text: string): Promise<void> {
  await page.goto(`${base}/tickets/${number}`);
  await page.getByRole('radio', { name: 'Public reply' }).check();
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByRole('button', { name: 'Send reply' }).click();
  await page.getByText('Your reply was added and mailed.').waitFor();
}

let ritaTicket = 0;

test.serial('Account → Download my data: a requester gets their tickets, files and mails; a participant theirs; no internal notes, no one else’s files', async (t) => {
  const rita = await signedIn('rita');
  const petra = await signedIn('petra');
  const fl = await signedIn('fl-agent');

  await h.send({
    from: `Rita Requester <${RITA}>`,
    to: HELPDESK,
    cc: PETRA,
    subject: 'Scanner upload fails',
    text: 'RITA-TEXT: the upload of series 7 fails.',
    messageId: '<rita-1@university.example>',
    attachments: [{ filename: 'rita-scan.txt', content: 'RITA-FILE-CONTENT' }],
  });
  ritaTicket = await ticketOf(h, '<rita-1@university.example>');
  await h.send({
    from: `Petra Participant <${PETRA}>`,
    to: HELPDESK,
    subject: `Re: [CIE#${ritaTicket}] Scanner upload fails`,
    text: 'PETRA-TEXT: same here with series 8.',
    messageId: '<petra-1@institute.example>',
    attachments: [{ filename: 'petra-notes.txt', content: 'PETRA-FILE-CONTENT' }],
  });
  await ticketOf(h, '<petra-1@institute.example>');
  await internalNote(fl, ritaTicket, 'SECRET-NOTE: the scanner firmware is known broken.', { name: 'internal.log', body: 'INTERNAL-FILE-CONTENT' });
  await publicReply(fl, ritaTicket, 'AGENT-REPLY: please try again tomorrow.');
  await quiet(h);

  await rita.goto(`${base}/account`);
  await screenshot(rita, import.meta.url, 'account with your data');
  t.deepEqual(await checkAccessibility(rita), [], 'account page');
  const files = await download(rita);
  t.regex(t_suggested.at(-1)!, /^helpdesk-data-\d{4}-\d\d-\d\d\.zip$/);
  const data = JSON.parse(files['data.json']!.toString('utf8')) as ExportedData;
  t.is(data.identity?.sub, 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1@lifescience-ri.eu');
  t.deepEqual(data.addresses.map((a) => a.address), [RITA]);
  t.is(data.consents.length, 1, 'the policy accepted at sign-in');
  t.deepEqual(data.tickets.map((x) => [x.number, x.yourRole]), [[ritaTicket, 'requester']]);
  const texts = data.tickets[0]!.articles.map((a) => a.text).join('\n');
  for (const words of ['RITA-TEXT', 'PETRA-TEXT', 'AGENT-REPLY']) t.true(texts.includes(words), `${words} is in the archive`);
  t.false(JSON.stringify(files['data.json']!.toString()).includes('SECRET-NOTE'), 'no internal note');
  t.false(JSON.stringify(data).includes('internal.log'), 'not even the name of the internal note’s file');
  const attachmentFiles = Object.keys(files).filter((f) => f.startsWith('attachments/'));
  t.is(attachmentFiles.length, 1, 'only her own file');
  t.regex(attachmentFiles[0]!, new RegExp(`^attachments/${ritaTicket}/[0-9a-f]{24}-1-rita-scan\\.txt$`));
  t.is(files[attachmentFiles[0]!]!.toString(), 'RITA-FILE-CONTENT');
  const petraFile = data.tickets[0]!.articles.flatMap((a) => a.attachments).find((a) => a.filename === 'petra-notes.txt');
  t.is(petraFile?.file, null, 'Petra’s file is named, not included');
  const mails = Object.keys(files).filter((f) => f.startsWith('mails/'));
  t.is(mails.length, 1, 'the one mail she sent');
  t.true(files[mails[0]!]!.toString().includes('RITA-TEXT'));
  t.true(files['README.txt']!.toString().includes('data.json'));

  const forPetra = await download(petra);
  const pdata = JSON.parse(forPetra['data.json']!.toString('utf8')) as ExportedData;
  t.deepEqual(pdata.tickets.map((x) => [x.number, x.yourRole]), [[ritaTicket, 'participant']]);
  t.false(forPetra['data.json']!.toString().includes('SECRET-NOTE'));
  const pfiles = Object.keys(forPetra).filter((f) => f.startsWith('attachments/') || f.startsWith('mails/'));
  t.is(pfiles.length, 2, 'her file and her mail');
  t.true(pfiles.some((f) => forPetra[f]!.toString() === 'PETRA-FILE-CONTENT'));
  t.false(Object.values(forPetra).some((b) => b.toString().includes('RITA-FILE-CONTENT')), 'not Rita’s file');
  t.false(Object.values(forPetra).some((b) => b.toString().includes('INTERNAL-FILE-CONTENT')), 'not the agent’s internal file');
  const pmail = pfiles.find((f) => f.startsWith('mails/'))!;
  t.true(forPetra[pmail]!.toString().includes('PETRA-TEXT') && !forPetra[pmail]!.toString().includes('RITA-TEXT: the upload'), 'her own mail only');
});

/** Every stored document that could name a person, as one text. */
async function everything(): Promise<string> {
  const m = h.hg.store.models;
  const parts = await Promise.all([
    m.Ticket.find({}).lean(),
    m.Article.find({}).lean(),
    m.TicketEvent.find({}).lean(),
    m.Outbox.find({}).lean(),
    m.Inbox.find({}).lean(),
    m.HeldMail.find({}).lean(),
    m.HeldSender.find({}).lean(),
    m.User.find({}).lean(),
    m.AddressBinding.find({}).lean(),
    m.Session.find({}).lean(),
    m.TicketList.find({}).lean(),
    m.MailToken.find({}).lean(),
    m.ErasureRequest.find({}).lean(),
    m.OpsEvent.find({}).lean(),
  ]);
  // Stored bytes (raw mails, MIME copies) as text, so that a name inside them is found too.
  const bytesAsText = (v: unknown): unknown => {
    if (Buffer.isBuffer(v)) return v.toString('latin1');
    if (v && typeof v === 'object' && (v as { _bsontype?: string })._bsontype === 'Binary') return Buffer.from((v as { buffer: Uint8Array }).buffer).toString('latin1');
    if (Array.isArray(v)) return v.map(bytesAsText);
    if (v && typeof v === 'object' && !(v instanceof Date) && (v as { _bsontype?: string })._bsontype === undefined) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, bytesAsText(x)]));
    return v;
  };
  return JSON.stringify(bytesAsText(parts));
}

test.serial('erasure end to end: requested on the portal, confirmed by mail, executed by First Line; the old binding signs in as a new person; text and files gone; the ticket keeps a pseudonym; audited', async (t) => {
  const erin = await signedIn('erin');
  await h.send({
    from: `Erin Example <${ERIN}>`,
    to: HELPDESK,
    subject: 'Dataset access for my study',
    text: 'ERIN-TEXT: my patient cohort is C-42.',
    messageId: '<erin-1@clinic.example>',
    attachments: [{ filename: 'erin-data.csv', content: 'ERIN-DATA-ROW,42' }],
  });
  const number = await ticketOf(h, '<erin-1@clinic.example>');
  const fl = await signedIn('fl-agent');
  await publicReply(fl, number, 'Hello Erin Example, AGENT-ANSWER: access is granted.');
  await quiet(h);
  const [erinArticle] = await h.articles(number);
  const fileSha = erinArticle!.attachments[0]!.sha256;
  t.truthy(await h.hg.store.blobs.get(fileSha));

  // The request, with its confirmation step.
  await erin.goto(`${base}/account`);
  await erin.getByRole('link', { name: 'Request erasure' }).click();
  await erin.getByRole('heading', { name: 'Erase my data' }).waitFor();
  t.deepEqual(await checkAccessibility(erin), [], 'confirmation page');
  await erin.getByRole('button', { name: 'Request erasure' }).click();
  await erin.getByText('Tick the box to confirm').waitFor();
  t.is((await h.hg.store.models.ErasureRequest.countDocuments({})), 0, 'nothing recorded without the confirmation');
  await erin.getByLabel('I understand that my data cannot be recovered once erased').check();
  await erin.getByRole('button', { name: 'Request erasure' }).click();
  await erin.getByText('Your request is recorded').waitFor();
  await screenshot(erin, import.meta.url, 'erasure requested');
  t.true((await erin.textContent('main'))!.includes('You asked on'), 'the account page says a request is open');
  const mail = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(ERIN) && m.parsed.subject.includes('erase your data'), 'the confirmation mail');
  t.regex(mail.parsed.text, /at the latest it is done\s+automatically on \d{4}-\d\d-\d\d \(20 days after your request\)/);
  const request = (await h.hg.store.models.ErasureRequest.findOne({}).lean<ErasureRequest>())!;
  t.is(request.state, 'confirmed');
  t.is(request.sub, ERIN_SUB);

  // First Line carries it out.
  await fl.goto(`${base}/queue`);
  await fl.getByRole('link', { name: 'Erasure requests' }).click();
  await fl.getByRole('heading', { name: 'Erasure requests' }).waitFor();
  t.true((await fl.textContent('table.erasures'))!.includes(ERIN));
  await screenshot(fl, import.meta.url, 'erasure requests');
  t.deepEqual(await checkAccessibility(fl), [], 'erasure requests page');
  await fl.getByRole('button', { name: 'Execute the erasure of Erin Example' }).click();
  await fl.getByText(/^Erased: 1 message emptied on 1 ticket/).waitFor();
  await fl.getByText('No request waiting').waitFor();
  const done = (await h.hg.store.models.ErasureRequest.findById(request._id).lean<ErasureRequest>())!;
  t.is(done.state, 'executed');
  t.is(done.executedBy?.name, 'Frida Firstline');
  t.deepEqual([done.sub, done.addresses], [null, []], 'the record keeps no personal data');
  t.like(done.counts, { articles: 1, attachments: 1, tickets: 1, rawMails: 1 });

  // Nothing names her any more: her text, file and mail are gone.
  const stored = await everything();
  for (const trace of [ERIN, 'Erin Example', ERIN_SUB, 'ERIN-TEXT', 'ERIN-DATA-ROW']) t.false(stored.includes(trace), `no trace of ${trace}: ${stored.slice(Math.max(0, stored.indexOf(trace) - 300), stored.indexOf(trace) + 100)}`);
  t.is(await h.hg.store.blobs.get(fileSha), null, 'her file is deleted');
  const item = (await h.hg.store.models.Inbox.findById(erinArticle!.inboxId).lean<InboxItem>())!;
  t.is(item.raw ?? null, null);
  t.is(item.rawRemoved?.reason, 'erasure');
  t.is(await h.hg.store.blobs.get(item.rawSha256), null);
  const toHer = await h.hg.store.models.Outbox.find({ to: request.pseudonym }).lean<OutboxMail[]>();
  t.true(toHer.length >= 2, 'the acknowledgement and the answer, addressed to the pseudonym');
  t.true(toHer.every((m) => m.text === '' && !m.raw && m.contentRemoved?.reason === 'erasure'));

  // The agent still opens the ticket: a pseudonym, the agent's own answer, the audit entry.
  await fl.goto(`${base}/tickets/${number}`);
  const requester = (await fl.locator('dl.facts dt:text-is("Requester") + dd').first().textContent())!;
  t.is(requester.trim(), `Erased person <${request.pseudonym}>`);
  const conversation = (await fl.textContent('ol.articles'))!;
  t.true(conversation.includes('Hello Erased person, AGENT-ANSWER'), 'the agent’s words stay, her name replaced');
  t.true(conversation.includes('erased at the writer'), 'her message says it was erased');
  const audit = (await fl.locator('table.audit-log tbody tr').allTextContents()).map((r) => r.replace(/\s+/g, ' '));
  t.true(audit.some((r) => r.includes('Frida Firstline') && r.includes('erase') && r.includes('1 of their messages emptied')), audit.join('\n'));
  await screenshot(fl, import.meta.url, 'ticket after erasure');

  // Her old session ended; signing in again with the same LS AAI account is a new person.
  const old = await erin.request.get(`${base}/account`, { maxRedirects: 0 });
  t.is(old.status(), 302);
  t.regex(old.headers().location ?? '', /^\/auth\/login/, 'the old session is signed out');
  const again = await browser.newPage();
  t.true((await signIn(again, 'erin')).consentAsked, 'the policy is asked again');
  await again.getByText('You have no tickets yet').waitFor();
  const gone = await again.goto(`${base}/tickets/${number}`);
  t.is(gone?.status(), 404, 'her old ticket is not hers any more');
});

test.serial('helpgate gdpr export and erase on the command line', async (t) => {
  // Where only a proven sender's Cc makes a participant, Rita's unverified mail did not make Petra one:
  // her archive then holds her own mail, not Rita's ticket (as the portal would not show it to her).
  const flagged = await runCli(['gdpr', 'export', PETRA], { env: { ...cliDatabaseEnv(h.db), HELPGATE_CONFIG: h.config.configFile, UNAUTHENTICATED_SENDERS: 'flag' } });
  t.is(flagged.code, 0, flagged.stderr);
  const flaggedData = JSON.parse(strFromU8(unzipSync(new Uint8Array(flagged.stdoutBytes))['data.json']!)) as ExportedData;
  t.deepEqual([flaggedData.tickets.length, flaggedData.mails.length], [0, 1]);

  const env = { ...cliDatabaseEnv(h.db), HELPGATE_CONFIG: h.config.configFile, UNAUTHENTICATED_SENDERS: 'accept' };
  const exported = await runCli(['gdpr', 'export', PETRA], { env });
  t.is(exported.code, 0, exported.stderr);
  const files = unzipSync(new Uint8Array(exported.stdoutBytes));
  const data = JSON.parse(strFromU8(files['data.json']!)) as ExportedData;
  t.deepEqual(data.tickets.map((x) => [x.number, x.yourRole]), [[ritaTicket, 'participant']]);
  t.regex(exported.stderr, /1 tickets, \d+ articles, 1 attachments, 1 raw mails/);

  const dry = await runCli(['gdpr', 'erase', PETRA, '--dry-run'], { env });
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /^would erase b2b2.*\(petra@institute\.example\):\n/);
  t.regex(dry.stdout, /1 of their articles emptied \(1 attachments\) on 1 tickets/);
  t.truthy(await h.hg.store.models.User.findById('b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2@lifescience-ri.eu').lean(), 'a dry run changes nothing');

  const erased = await runCli(['gdpr', 'erase', PETRA], { env });
  t.is(erased.code, 0, erased.stderr);
  t.regex(erased.stdout, /^erased b2b2/);
  t.regex(erased.stdout, /1 received mails deleted/);
  t.is(await h.hg.store.models.User.findById('b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2@lifescience-ri.eu').lean(), null);
  t.is(await h.hg.store.models.AddressBinding.findById(PETRA).lean(), null);
  const ticket = (await h.ticket(ritaTicket))!;
  t.false(ticket.participants.includes(PETRA));
  t.true(ticket.participants.some((p) => p.endsWith('@erased.invalid')), 'a pseudonym in her place');
  t.false((await everything()).includes('PETRA-TEXT'));
  const rita = await h.hg.store.models.Article.findOne({ messageId: '<rita-1@university.example>' }).lean<Article>();
  t.is(rita!.text, 'RITA-TEXT: the upload of series 7 fails.', 'other people’s words stay');

  const unknown = await runCli(['gdpr', 'export', 'nobody-at-all'], { env });
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /not found/);
});

function counter(kind: string): number {
  const m = new RegExp(`^helpgate_retention_removed_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(lastScrape);
  return m ? Number(m[1]) : 0;
}
let lastScrape = '';

test.serial('retention on a test clock removes exactly what is due; an erasure nobody executed is carried out after its grace period', async (t) => {
  const m = h.hg.store.models;
  // Rita asks for erasure (ERASURE_GRACE_DAYS 20) and no agent acts on it.
  const rita = pages.rita!;
  await rita.goto(`${base}/account/erase`);
  await rita.getByLabel('I understand that my data cannot be recovered once erased').check();
  await rita.getByRole('button', { name: 'Request erasure' }).click();
  await rita.getByText('Your request is recorded').waitFor();
  const ritaRequest = (await m.ErasureRequest.findOne({ state: 'confirmed' }).lean<ErasureRequest>())!;
  // A mail from an address bound to no one: held, then expired after HOLD_DAYS (14).
  await h.send({ from: 'stranger@elsewhere.example', to: HELPDESK, subject: 'Hello?', text: 'STRANGER-TEXT', messageId: '<stranger-1@elsewhere.example>' });
  const held = await until(() => m.Inbox.findOne({ state: 'held' }).lean<InboxItem>(), { what: 'the held mail' });
  // A second ticket of Rita's with the same file as her first: a shared blob.
  await h.send({ from: RITA, to: HELPDESK, subject: 'Another question', text: 'RITA-TEXT-2', messageId: '<rita-2@university.example>', attachments: [{ filename: 'copy.txt', content: 'RITA-FILE-CONTENT' }] });
  const second = await ticketOf(h, '<rita-2@university.example>');
  await quiet(h);

  // Ages, as if these had happened earlier: one raw mail 40 days old, one outbound copy 70 days,
  // Rita's first ticket closed 7 months ago.
  const old = (await m.Inbox.findOne({ state: 'done', rawRemoved: null }).sort({ receivedAt: 1 }).lean<InboxItem>())!;
  await m.Inbox.updateOne({ _id: old._id }, { $set: { receivedAt: new Date(Date.now() - 40 * DAY) } });
  const oldMail = (await m.Outbox.findOne({ state: 'sent', contentRemoved: null }).lean<OutboxMail>())!;
  await m.Outbox.updateOne({ _id: oldMail._id }, { $set: { sentAt: new Date(Date.now() - 70 * DAY) } });
  await m.Ticket.updateOne({ number: ritaTicket }, { $set: { state: 'closed', stateSince: new Date(Date.now() - 7 * 31 * DAY) } });
  const closedFiles = (await h.articles(ritaTicket)).flatMap((a) => a.attachments);
  const secondFile = (await h.articles(second))[0]!.attachments[0]!;
  t.true(closedFiles.some((f) => f.sha256 === secondFile.sha256), 'the second ticket shares a file with the closed one');
  const onlyClosed = closedFiles.filter((f) => f.sha256 !== secondFile.sha256);

  // Day 15: the held mail expires (HOLD_DAYS 14) but is kept 10 days more; only the aged things are due.
  offset = 15 * DAY;
  await expireHeldMail(h.hg.ctx);
  t.is((await m.Inbox.findById(held._id).lean<InboxItem>())!.state, 'expired');
  await quiet(h);
  const first = (await h.hg.privacy.runNow())!;
  t.deepEqual(first.removed, { rawMails: 1, heldMails: 0, outbound: 1, attachments: closedFiles.length, blobs: first.removed.blobs });
  const oldNow = (await m.Inbox.findById(old._id).lean<InboxItem>())!;
  t.is(oldNow.raw ?? null, null);
  t.regex(oldNow.rawRemoved!.reason, /raw mail kept 30 days/, 'the item stays and says why its message is gone');
  t.is((await m.Inbox.countDocuments({ rawRemoved: null, state: { $in: ['done', 'ignored'] } })) > 0, true, 'younger raw mails are kept');
  t.is((await m.Inbox.findById(held._id).lean<InboxItem>())!.rawRemoved ?? null, null, 'the expired mail is not due yet');
  const oldOut = (await m.Outbox.findById(oldMail._id).lean<OutboxMail>())!;
  t.deepEqual([oldOut.text, oldOut.html, oldOut.raw ?? null, oldOut.subject], ['', null, null, oldMail.subject], 'the words go, the delivery record stays');
  t.is(await m.Outbox.countDocuments({ state: 'sent', contentRemoved: null }) > 0, true, 'younger outbound copies are kept');
  const closedNow = await h.articles(ritaTicket);
  t.true(closedNow.every((a) => a.attachments.length === 0));
  t.true(closedNow.some((a) => /rita-scan\.txt\) removed on .*closed more than 6 months ago/.test(a.note ?? '')));
  t.is((await h.articles(second))[0]!.attachments.length, 1, 'an open ticket keeps its files');
  t.truthy(await h.hg.store.blobs.get(secondFile.sha256), 'a blob another ticket uses stays');
  for (const f of onlyClosed) t.is(await h.hg.store.blobs.get(f.sha256), null, `${f.filename} is deleted`);
  lastScrape = await registry.metrics();
  t.true(counter('raw_mail') >= 1 && counter('attachment') >= closedFiles.length, 'counted in metrics');

  t.is((await m.ErasureRequest.findById(ritaRequest._id).lean<ErasureRequest>())!.state, 'confirmed', 'the grace period has not ended');

  // The same day again: nothing more is due.
  const again = (await h.hg.privacy.runNow())!;
  t.deepEqual(again.removed, { rawMails: 0, heldMails: 0, outbound: 0, attachments: 0, blobs: 0 });

  // Day 61: everything received and sent today is due, and the expired held mail (14 + 10 days).
  const rawLeft = await m.Inbox.countDocuments({ rawRemoved: null, state: { $in: ['done', 'ignored'] } });
  const outLeft = await m.Outbox.countDocuments({ contentRemoved: null, state: { $in: ['sent', 'captured'] } });
  offset = 61 * DAY;
  const last = (await h.hg.privacy.runNow())!;
  t.like(last.removed, { rawMails: rawLeft, heldMails: 1, outbound: outLeft, attachments: 0 });
  t.is((await m.Inbox.findById(held._id).lean<InboxItem>())!.rawRemoved?.reason.startsWith('retention: held mail'), true);
  t.is(await m.Inbox.countDocuments({ rawRemoved: null, state: { $in: ['done', 'ignored', 'expired'] } }), 0);
  t.is((await m.PrivacyRun.countDocuments({})) >= 2, true, 'each day’s run is recorded');
  t.is(last.erasures, 1);
  const executed = (await m.ErasureRequest.findById(ritaRequest._id).lean<ErasureRequest>())!;
  t.like(executed, { state: 'executed', executedBy: { kind: 'grace' } });
  t.is(await m.User.findById('a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1@lifescience-ri.eu').lean(), null, 'her account is gone');
});

test.serial('the daily job runs once a day, in one process at a time', async (t) => {
  offset = 70 * DAY;
  const runs = await Promise.all([runDailyPrivacyJob(h.hg.ctx, 'process-a'), runDailyPrivacyJob(h.hg.ctx, 'process-b')]);
  t.is(runs.filter(Boolean).length, 1, 'one of two processes runs it');
  t.is(await runDailyPrivacyJob(h.hg.ctx, 'process-c'), null, 'the day is done');
  offset = 71 * DAY;
  t.truthy(await runDailyPrivacyJob(h.hg.ctx, 'process-c'), 'the next day runs again');
});

test('retention settings: defaults, and a bad value names its key', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-privacy-config-'));
  const config = loadConfig({ HELPGATE_DATA_DIR: dir });
  t.deepEqual(config.retention, { rawMailDays: 90, heldMailDays: 90, outboundDays: 90, closedTicketAttachmentsMonths: null });
  t.is(config.erasureGraceDays, 30);
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, readFileSync(exampleConfigPath, 'utf8').replace('rawMailDays: 90', 'rawMailDays: 0'));
  t.throws(() => loadConfig({ HELPGATE_DATA_DIR: dir, HELPGATE_CONFIG: bad }), { message: /retention\.rawMailDays/ });
  t.throws(() => loadConfig({ HELPGATE_DATA_DIR: dir, ERASURE_GRACE_DAYS: '-1' }), { message: /ERASURE_GRACE_DAYS/ });
});
