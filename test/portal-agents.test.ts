import test from 'ava';
import type { Page } from 'playwright-core';
import { freePort } from '../src/db/embedded.ts';
import type { Article } from '../src/db/models/article.ts';
import { startBrowser, screenshot, checkAccessibility, type TestBrowser, signInWithDevAai } from './helpers/browser.ts';
import { HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { clientReply, quiet, ticketOf } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';

const REQUESTER = 'researcher@university.example';
const FL_BACKUP = 'fl-backup@eucaim.example.org';
const NOTE = 'Internal: the scheduler on node B was restarted twice this week.';
const QUESTION = 'Which job identifier and which reference node did you use?';
const SOLUTION = 'The stuck queue on node B was cleared; please resubmit job 1234.';

let h: TestHelpgate;
let browser: TestBrowser;
let base: string;
/** The ticket the walk-through works on. */
let walked = 0;

test.before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  h = await startTestHelpgate(null, { portal: true, env: { HTTP_PORT: String(port), PUBLIC_URL: base } });
  browser = await startBrowser();
});
test.after.always(async () => {
  await browser?.close();
  await h?.stop();
});

/** Signs in through the dev LS AAI, accepting the consents shown. */
async function signedIn(username: string): Promise<Page> {
  const page = await browser.newPage();
  await signInWithDevAai(page, base, username);
  return page;
}

/** A new ticket from the researcher, by mail over SMTP. */
async function mailTicket(subject: string, text: string): Promise<number> {
  const messageId = `<${subject.toLowerCase().replace(/\W+/g, '-')}-${Date.now()}@university.example>`;
  await h.send({ from: REQUESTER, to: HELPDESK, subject, text, messageId });
  return ticketOf(h, messageId);
}

/** The counter of a state on a queue page. */
async function counter(page: Page, state: string): Promise<number> {
  const item = page.locator('.counters li', { has: page.locator('.state-name', { hasText: new RegExp(`^${state}$`) }) });
  return Number(await item.locator('.count').textContent());
}

/** The audit log as [action, who, channel, outcome] rows. */
async function auditRows(page: Page): Promise<string[][]> {
  const rows: string[][] = [];
  for (const row of await page.locator('table.audit-log tbody tr').all()) rows.push((await row.locator('td').allTextContents()).map((c) => c.replace(/\s+/g, ' ').trim()));
  return rows;
}

async function fact(page: Page, name: string): Promise<string> {
  return (await page.locator(`dl.facts dt:text-is("${name}") + dd`).first().textContent())!.trim();
}

test.serial('an agent works a ticket in the portal: take, internal note, assign; the next unit asks, then solves; audit log, counters, mails', async (t) => {
  walked = await mailTicket('Segmentation job stuck', 'My job has been queued for two days.');
  const fl = await signedIn('fl-agent');
  await fl.getByRole('heading', { name: 'Queue of First Line Support' }).waitFor();
  t.is(await counter(fl, 'new'), 1, 'one new ticket in First Line');
  await screenshot(fl, import.meta.url, 'first-line-queue');
  t.deepEqual(await checkAccessibility(fl), [], 'queue page');

  await fl.getByRole('link', { name: `CIE#${walked}` }).click();
  await fl.getByRole('heading', { name: 'Segmentation job stuck' }).waitFor();
  t.regex(await fact(fl, 'First response'), /^due \d{4}-\d\d-\d\d/, 'the SLA clock runs');
  t.deepEqual(await checkAccessibility(fl), [], 'agent ticket page');

  await fl.getByRole('button', { name: 'Take', exact: true }).click();
  await fl.getByText('You took the ticket.').waitFor();
  t.is(await fact(fl, 'State'), 'in progress');
  t.is(await fact(fl, 'Assignee'), 'Frida Firstline');

  await fl.getByRole('radio', { name: 'Internal note' }).check();
  await fl.getByLabel('Message', { exact: true }).fill(NOTE);
  await fl.getByLabel('Attachments', { exact: true }).setInputFiles({ name: 'scheduler.log', mimeType: 'text/plain', buffer: Buffer.from('restart at 03:00\n') });
  await fl.getByRole('button', { name: 'Add internal note' }).click();
  await fl.getByText('Your internal note was added').waitFor();
  const note = fl.locator('li.article.internal');
  t.is(await note.count(), 1);
  t.true((await note.textContent())!.includes('Internal note · not sent to the requester'), 'labelled, not only coloured');
  t.true((await note.textContent())!.includes(NOTE));
  await screenshot(fl, import.meta.url, 'internal-note');

  await fl.getByLabel('Support Unit', { exact: true }).selectOption({ label: 'Technical Support Team' });
  await fl.getByRole('button', { name: 'Assign', exact: true }).click();
  await fl.getByText('The ticket was assigned to Technical Support Team.').waitFor();
  t.is(await fact(fl, 'State'), 'assigned');
  await fl.goto(`${base}/queue/first-line`);
  t.is(await counter(fl, 'new'), 0, 'gone from First Line');
  t.is(await fl.getByRole('link', { name: `CIE#${walked}` }).count(), 0);
  await fl.goto(`${base}/queue/first-line?scope=seen`);
  t.is(await fl.getByRole('link', { name: `CIE#${walked}` }).count(), 1, 'listed among the tickets that were in First Line');

  const tst = await signedIn('tst-agent');
  await tst.getByRole('heading', { name: 'Queue of Technical Support Team' }).waitFor();
  t.is(await counter(tst, 'assigned'), 1);
  await tst.getByRole('link', { name: `CIE#${walked}` }).click();
  t.true((await tst.textContent('main'))!.includes(NOTE), 'the next unit reads the note');
  await tst.getByRole('radio', { name: 'Request information' }).check();
  await tst.getByLabel('Message', { exact: true }).fill(QUESTION);
  await tst.getByRole('button', { name: 'Request information' }).click();
  await tst.getByText('The requester was asked for information').waitFor();
  t.is(await fact(tst, 'State'), 'waiting for reply');
  t.regex(await fact(tst, 'First response'), /^answered at /);
  t.regex(await fact(tst, 'Pending timers'), /Reminder 1 to the requester: \d{4}-/);

  const asked = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(REQUESTER) && m.parsed.text.includes(QUESTION), 'the request for information');
  t.true(asked.parsed.subject.includes(`[CIE#${walked}]`));
  await h.send(clientReply(asked, { from: REQUESTER, text: 'Job 1234 on reference node B.' }));
  await until(async () => {
    await tst.reload();
    return (await fact(tst, 'State')) === 'in progress';
  }, { what: 'the requester’s answer to move the ticket on' });
  await tst.goto(`${base}/queue/technical`);
  t.is(await counter(tst, 'in progress'), 1);
  await tst.getByRole('link', { name: `CIE#${walked}` }).click();

  await tst.getByRole('radio', { name: 'Solution' }).check();
  await tst.getByLabel('Message', { exact: true }).fill(SOLUTION);
  await tst.getByRole('button', { name: 'Solve the ticket' }).click();
  await tst.getByText('The ticket is solved').waitFor();
  t.is(await fact(tst, 'State'), 'solved');
  t.regex(await fact(tst, 'Pending timers'), /Closed automatically/);
  t.true((await tst.locator('li.article', { hasText: SOLUTION }).textContent())!.includes('Solution'));
  await screenshot(tst, import.meta.url, 'solved');
  t.deepEqual(await checkAccessibility(tst), [], 'agent ticket page with an internal note, SLA clock and audit log');

  const rows = await auditRows(tst);
  const applied = rows.filter((r) => r[5] === 'applied').map((r) => [r[3], r[2], r[1]!.replace(/ <.*/, '')]);
  t.deepEqual(
    applied.map(([action, channel]) => [action, channel]),
    [['take', 'web'], ['assign', 'web'], ['waiting', 'web'], ['answered', 'mail'], ['solve', 'web']],
  );
  t.deepEqual(applied.filter(([, channel]) => channel === 'web').map(([action, , who]) => [action, who]), [
    ['take', 'Frida Firstline'],
    ['assign', 'Frida Firstline'],
    ['waiting', 'Tomas Techsupport'],
    ['solve', 'Tomas Techsupport'],
  ]);
  const assignRow = rows.find((r) => r[3] === 'assign')!;
  t.true(assignRow[4]!.includes('Support Unit: First Line Support → Technical Support Team'), assignRow[4]);
  t.true(rows.find((r) => r[3] === 'take')![4]!.includes('state: new → in progress'));
  await tst.goto(`${base}/queue/technical?state=all`);
  t.is(await counter(tst, 'solved'), 1);
  t.is(await counter(tst, 'in progress'), 0);

  const solution = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(REQUESTER) && m.parsed.text.includes(SOLUTION), 'the solution');
  t.true(solution.parsed.text.includes(`${base}/tickets/${walked}/verify`));
  await quiet(h);
  t.true(h.relay.to(FL_BACKUP).some((m) => m.parsed.text.includes(NOTE)), 'the other First Line agent got the note');
  t.false(h.relay.to(REQUESTER).some((m) => m.parsed.text.includes(NOTE) || (m.parsed.html ?? '').includes(NOTE)), 'the requester never got the note');
  await fl.close();
  await tst.close();
});

test.serial('an agent of another unit sees the tickets that are or were in it, and no others', async (t) => {
  const other = await mailTicket('Dashboard login loop', 'The dashboard sends me back to the login page.');
  const tst = await signedIn('tst-agent');
  const hidden = await tst.goto(`${base}/tickets/${other}`);
  t.is(hidden!.status(), 404);
  t.false((await tst.content()).includes('Dashboard login loop'));
  const csrf = await tst.locator('input[name=_csrf]').first().getAttribute('value');
  const post = await tst.request.post(`${base}/tickets/${other}/act`, { form: { _csrf: csrf!, action: 'take', submission: 'y'.repeat(24), version: '0' } });
  t.is(post.status(), 404, 'acting on it is as unknown as seeing it');
  t.is((await h.ticket(other))!.state, 'new');
  t.is((await tst.goto(`${base}/queue/first-line`))!.status(), 404, 'not their queue');
  const seen = await tst.goto(`${base}/tickets/${walked}`);
  t.is(seen!.status(), 200, 'the ticket that was assigned to technical');
  await tst.close();
});

test.serial('the requester sees neither internal notes nor the audit log, and confirms the solution', async (t) => {
  const me = await signedIn('researcher');
  const options = await me.locator('#state option').allTextContents();
  t.true(options.includes('waiting for reply') && options.includes('verified'), 'the GGUS states in the filter');
  const res = await me.goto(`${base}/tickets/${walked}`);
  t.is(res!.status(), 200);
  const html = await me.content();
  t.false(html.includes(NOTE), 'no internal note');
  t.false(html.includes('scheduler.log'));
  t.false(html.includes('Audit log'));
  t.false(html.includes('/act'));
  t.true(html.includes(SOLUTION));
  t.true(await me.getByRole('button', { name: 'Reopen' }).isVisible());
  t.is(await me.getByRole('button', { name: 'Mark as solved' }).count(), 0, 'solved already');
  t.deepEqual(await checkAccessibility(me), [], 'requester ticket page');
  const noteArticle = (await h.hg.store.models.Article.findOne({ ticketNumber: walked, internal: true }).lean<Article>())!;
  const attachment = `${base}/tickets/${walked}/articles/${noteArticle._id}/attachments/0`;
  t.is((await me.request.get(attachment)).status(), 404, 'the note’s attachment does not exist for the requester');

  await me.goto(`${base}/tickets/${walked}/verify`);
  await me.getByRole('heading', { name: 'Confirm the solution' }).waitFor();
  t.deepEqual(await checkAccessibility(me), [], 'verify page');
  await me.getByRole('button', { name: 'Confirm the solution works' }).click();
  await me.getByText('the solution is confirmed').waitFor();
  t.is(await fact(me, 'State'), 'closed');
  t.is(await me.getByRole('button', { name: 'Reopen' }).count(), 0);

  const fl = await signedIn('fl-agent');
  t.is((await fl.request.get(attachment)).status(), 200, 'agents open it');
  await fl.goto(`${base}/tickets/${walked}`);
  const actions = (await auditRows(fl)).map((r) => r[3]);
  t.deepEqual(actions.slice(-2), ['verify', 'close'], 'verified, then closed');
  await me.close();
  await fl.close();
});

test.serial('a lost race: the second assignment is refused, says who changed the ticket, and is logged', async (t) => {
  const number = await mailTicket('Catalogue entry missing', 'Dataset 77 is not in the catalogue.');
  const a = await signedIn('fl-agent');
  const b = await signedIn('fl-agent');
  await a.goto(`${base}/tickets/${number}`);
  await b.goto(`${base}/tickets/${number}`);
  await a.getByLabel('Support Unit', { exact: true }).selectOption({ label: 'Technical Support Team' });
  await a.getByRole('button', { name: 'Assign', exact: true }).click();
  await a.getByText('The ticket was assigned to Technical Support Team.').waitFor();

  await b.getByLabel('Support Unit', { exact: true }).selectOption({ label: 'Catalogue' });
  const [response] = await Promise.all([b.waitForResponse((r) => r.url().endsWith(`/tickets/${number}/act`)), b.getByRole('button', { name: 'Assign', exact: true }).click()]);
  t.is(response.status(), 409);
  const alert = (await b.getByRole('alert').textContent())!;
  t.regex(alert, /Not done: already assigned by Frida Firstline/);
  await screenshot(b, import.meta.url, 'lost-race');
  t.is(await fact(b, 'Support Unit'), 'Technical Support Team', 'the first assignment stands');
  const refused = (await auditRows(b)).filter((r) => r[5]!.startsWith('Refused:'));
  t.is(refused.length, 1);
  t.is(refused[0]![3], 'assign');
  t.regex(refused[0]![5]!, /already assigned by Frida Firstline/);
  t.is((await h.ticket(number))!.su, 'technical');

  // A solution written on a page that is out of date: refused, the text kept in the form, nothing stored or mailed.
  const solution = 'Dataset 77 was re-indexed.';
  await a.reload();
  await b.reload();
  await a.getByRole('button', { name: 'Put on hold' }).click();
  await a.getByText('The ticket is on hold.').waitFor();
  await b.getByRole('radio', { name: 'Solution' }).check();
  await b.getByLabel('Message', { exact: true }).fill(solution);
  await b.getByRole('button', { name: 'Solve the ticket' }).click();
  t.regex((await b.getByRole('alert').textContent())!, /Not done: .*put on hold by Frida Firstline/);
  t.is(await b.getByLabel('Message', { exact: true }).inputValue(), solution, 'what was typed is kept');
  t.true(await b.getByRole('radio', { name: 'Solution' }).isChecked(), 'in the mode it was written in');
  t.is((await h.ticket(number))!.state, 'on hold');
  t.false((await h.articles(number)).some((a) => a.text.includes(solution)), 'no article for a refused solution');
  await quiet(h);
  t.false(h.relay.to(REQUESTER).some((m) => m.parsed.text.includes(solution)));
  await a.close();
  await b.close();
});

test.serial('the queue is sorted by urgency: overdue first response, then priority, then the oldest', async (t) => {
  const older = await mailTicket('Older question', 'Less urgent.');
  const top = await mailTicket('Top priority question', 'Very important.');
  const overdue = await mailTicket('Overdue question', 'Nobody answered.');
  // Once helpgate is done with the new tickets (a later write of theirs could put the old value back).
  await quiet(h);
  await h.hg.store.models.Ticket.updateOne({ number: overdue }, { $set: { slaDue: new Date(Date.now() - 3600_000) } });
  const fl = await signedIn('fl-agent');
  await fl.goto(`${base}/tickets/${top}`);
  await fl.getByLabel('Priority', { exact: true }).selectOption('top priority');
  await fl.getByRole('button', { name: 'Set priority' }).click();
  await fl.getByText('The priority is now top priority.').waitFor();
  await fl.goto(`${base}/queue/first-line`);
  const numbers = (await fl.locator('table.queue tbody tr td:first-child').allTextContents()).map((s) => Number(s.trim().replace('CIE#', '')));
  t.deepEqual(numbers.filter((n) => [older, top, overdue].includes(n)), [overdue, top, older]);
  t.true((await fl.locator('table.queue tbody tr').first().textContent())!.includes('Overdue'));
  await fl.goto(`${base}/queue/first-line?sla=overdue`);
  t.deepEqual(await fl.locator('table.queue tbody tr td:first-child').allTextContents(), [`CIE#${overdue}`]);
  await fl.close();
});
