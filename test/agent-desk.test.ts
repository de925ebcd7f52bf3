import test from 'ava';
import type { Page } from 'playwright-core';
import { freePort } from '../src/db/embedded.ts';
import { startBrowser, screenshot, checkAccessibility, type TestBrowser, signInWithDevAai } from './helpers/browser.ts';
import { HELPDESK, TST_AGENT, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { quiet, ticketOf } from './helpers/mail-flow.ts';

const REQUESTER = 'researcher@university.example';
const FL_BACKUP = 'fl-backup@eucaim.example.org';

let h: TestHelpgate;
let browser: TestBrowser;
let base: string;

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

/** Signs in through the dev LS AAI from `start` (a portal path), accepting the consents shown. */
async function signedIn(username: string, start = '/auth/login'): Promise<Page> {
  const page = await browser.newPage();
  await signInWithDevAai(page, base, username, { start });
  return page;
}

async function mailTicket(subject: string): Promise<number> {
  const messageId = `<${subject.toLowerCase().replace(/\W+/g, '-')}-${Date.now()}@university.example>`;
  await h.send({ from: REQUESTER, to: HELPDESK, subject, text: `${subject}: please help.`, messageId });
  return ticketOf(h, messageId);
}

async function fact(page: Page, name: string): Promise<string> {
  return (await page.locator(`dl.facts dt:text-is("${name}") + dd`).first().textContent())!.trim();
}

/** Writes in the composer, in one of its modes, and sends. */
async function compose(page: Page, mode: string, text: string, button: string): Promise<void> {
  await page.getByRole('radio', { name: mode }).check();
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByRole('button', { name: button }).click();
}

const flash = (page: Page) => page.locator('.flash-success[role=status]');

test.serial('an agent lands on the queue; a filtered queue survives the sign-in round trip', async (t) => {
  const fl = await signedIn('fl-agent');
  await fl.getByRole('heading', { name: 'Queue of First Line Support' }).waitFor();
  t.is(new URL(fl.url()).pathname, '/queue/first-line', 'after sign-in');
  await fl.goto(base);
  t.is(new URL(fl.url()).pathname, '/queue/first-line', 'and on /');
  await fl.goto(`${base}/tickets`);
  await fl.getByRole('heading', { name: 'My tickets' }).waitFor();
  await fl.close();

  // Not signed in: /queue?state=all goes to the provider and comes back with its filter.
  const again = await signedIn('fl-agent', '/queue?state=all&priority=top%20priority');
  await again.getByRole('heading', { name: 'Queue of First Line Support' }).waitFor();
  const url = new URL(again.url());
  t.is(url.pathname, '/queue/first-line');
  t.deepEqual([...url.searchParams], [['state', 'all'], ['priority', 'top priority']]);
  t.is(await again.getByLabel('State', { exact: true }).inputValue(), 'all');
  t.is(await again.getByLabel('Priority', { exact: true }).inputValue(), 'top priority');
  await again.close();
});

test.serial('the composer in each mode: public reply mailed, internal note kept from the requester, request information waits, solution solves and is marked', async (t) => {
  const number = await mailTicket('Viewer shows a black image');
  const fl = await signedIn('fl-agent');
  await fl.goto(`${base}/queue/first-line?state=all`);
  await fl.getByRole('link', { name: `CIE#${number}` }).click();
  await fl.getByRole('heading', { name: 'Viewer shows a black image' }).waitFor();
  t.is(await fl.getByRole('link', { name: 'Back to the queue' }).getAttribute('href'), '/queue/first-line?state=all', 'the way back keeps the filters');
  t.true(await fl.getByRole('radio', { name: 'Public reply' }).isChecked(), 'a public reply by default');
  t.deepEqual(await checkAccessibility(fl), [], 'agent ticket page with the composer');

  // The same keyboard flow in every mode: arrows switch the mode, Tab goes on to the text.
  await fl.getByRole('radio', { name: 'Public reply' }).focus();
  await fl.keyboard.press('ArrowRight');
  t.true(await fl.getByRole('radio', { name: 'Internal note' }).isChecked());
  await fl.keyboard.press('Tab');
  t.is(await fl.evaluate('document.activeElement?.id'), 'composer-text');
  t.true(await fl.getByRole('button', { name: 'Add internal note' }).isVisible(), 'the button says what it does');
  await screenshot(fl, import.meta.url, 'composer-note-mode');
  // On a phone the switch wraps: nothing in the composer or the actions runs out of its box.
  await fl.setViewportSize({ width: 375, height: 800 });
  const overflowing = await fl.evaluate(`[...document.querySelectorAll('.composer, .composer *, .agent-actions, .agent-actions *')].filter((e) => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === 'visible').map((e) => e.id || e.className || e.tagName)`);
  t.deepEqual(overflowing, []);
  await screenshot(fl, import.meta.url, 'composer-375');
  await fl.setViewportSize({ width: 1280, height: 800 });

  await compose(fl, 'Public reply', 'Which browser do you use?', 'Send reply');
  t.is(await flash(fl).textContent(), 'Your reply was added and mailed.');
  const reply = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(REQUESTER) && m.parsed.text.includes('Which browser do you use?'), 'the public reply');
  t.true(reply.parsed.subject.includes(`[CIE#${number}]`));

  const note = 'Internal: same report from two other sites.';
  await compose(fl, 'Internal note', note, 'Add internal note');
  t.regex((await flash(fl).textContent())!, /internal note was added/);
  t.true((await fl.locator('li.article.internal').textContent())!.includes(note));
  await h.relay.waitFor((m) => m.envelope.rcptTo.includes(FL_BACKUP) && m.parsed.text.includes(note), 'the note at the unit');

  const question = 'Please send the study UID.';
  await compose(fl, 'Request information', question, 'Request information');
  t.regex((await flash(fl).textContent())!, /asked for information/);
  t.is(await fact(fl, 'State'), 'waiting for reply');
  await h.relay.waitFor((m) => m.envelope.rcptTo.includes(REQUESTER) && m.parsed.text.includes(question), 'the question');

  // A solution without words is not accepted; the file attached to it is kept for the next try.
  await fl.getByRole('radio', { name: 'Solution' }).check();
  await fl.getByLabel('Attachments', { exact: true }).setInputFiles({ name: 'howto.txt', mimeType: 'text/plain', buffer: Buffer.from('Clear the cache.\n') });
  const [rejected] = await Promise.all([fl.waitForResponse((r) => r.url().endsWith(`/tickets/${number}/act`)), fl.getByRole('button', { name: 'Solve the ticket' }).click()]);
  t.is(rejected.status(), 422);
  t.is(await fl.evaluate('document.activeElement?.id'), 'error-summary');
  t.is(await fl.getByRole('alert').getByRole('link', { name: 'Write the solution.' }).getAttribute('href'), '#composer-text');
  t.true(await fl.getByRole('radio', { name: 'Solution' }).isChecked(), 'still in the mode it was sent in');
  t.deepEqual(await fl.locator('.held-files .file-name').allTextContents(), ['howto.txt']);
  await screenshot(fl, import.meta.url, 'composer-rejected');
  t.deepEqual(await checkAccessibility(fl), [], 'composer with an error');
  const solution = 'Clearing the browser cache fixes the black image.';
  await fl.getByLabel('Message', { exact: true }).fill(solution);
  await fl.getByRole('button', { name: 'Solve the ticket' }).click();
  t.regex((await flash(fl).textContent())!, /The ticket is solved/);
  t.is(await fact(fl, 'State'), 'solved');
  const solved = (await h.articles(number)).find((a) => a.text === solution)!;
  t.deepEqual(solved.attachments.map((a) => a.filename), ['howto.txt'], 'the kept file went with the solution');
  await h.relay.waitFor((m) => m.envelope.rcptTo.includes(REQUESTER) && m.parsed.text.includes(solution), 'the solution');
  await quiet(h);
  t.false(h.relay.to(REQUESTER).some((m) => m.parsed.text.includes(note) || (m.parsed.html || '').includes(note)), 'the note never reached the requester');
  await fl.close();

  // The requester finds the solution marked as such.
  const me = await signedIn('researcher');
  await me.goto(`${base}/tickets/${number}`);
  const marked = me.locator('li.article.solution');
  t.is(await marked.count(), 1);
  t.true((await marked.textContent())!.includes(solution));
  t.is((await marked.locator('.badge').textContent())!.trim(), 'Solution');
  t.false((await me.content()).includes(note));
  await screenshot(me, import.meta.url, 'requester-solution');
  t.deepEqual(await checkAccessibility(me), [], 'requester page with the marked solution');
  await me.close();
});

test.serial('assign with a handover comment: the new unit gets it by mail and on the page; an agent who handed it away goes back to the filtered queue', async (t) => {
  const number = await mailTicket('Quota exceeded on upload');
  const comment = 'Handover: quota is 2 TB, user has 1.9 TB; please check the storage node.';
  const fl = await signedIn('fl-agent');
  await fl.goto(`${base}/tickets/${number}`);
  await fl.getByLabel('Support Unit', { exact: true }).selectOption({ label: 'Technical Support Team' });
  await fl.getByLabel(/^Handover comment/).fill(comment);
  await fl.getByRole('button', { name: 'Assign', exact: true }).click();
  t.regex((await flash(fl).textContent())!, /assigned to Technical Support Team\. Your handover comment went with it\./);
  t.is(await fact(fl, 'Support Unit'), 'Technical Support Team');

  const mail = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(TST_AGENT) && m.parsed.subject.includes(`[CIE#${number}]`) && m.parsed.text.includes('was assigned to'), 'the assignment mail at the new unit');
  t.true(mail.parsed.text.includes(comment), 'the handover comment is in the new unit’s mail');

  const tst = await signedIn('tst-agent');
  await tst.goto(`${base}/queue/technical?state=all`);
  await tst.getByRole('link', { name: `CIE#${number}` }).click();
  const handover = tst.locator('li.article.internal', { hasText: comment });
  t.is(await handover.count(), 1, 'the new unit reads the comment on the ticket');
  t.true((await handover.textContent())!.includes('Handover note · not sent to the requester'));

  // Technical hands it on to a unit its agent is not in: back to the queue, filters and all.
  await tst.getByLabel('Support Unit', { exact: true }).selectOption({ label: 'Catalogue' });
  await tst.getByRole('button', { name: 'Assign', exact: true }).click();
  await tst.waitForURL((u) => u.pathname === '/queue/technical');
  t.is(new URL(tst.url()).search, '?state=all');
  t.regex((await flash(tst).textContent())!, new RegExp(`assigned to Catalogue\\. CIE#${number} has left your queue\\.`));
  await screenshot(tst, import.meta.url, 'back-to-queue');
  await quiet(h);
  t.false(h.relay.to(REQUESTER).some((m) => m.parsed.text.includes(comment)), 'the requester never gets the comment');
  await fl.close();
  await tst.close();
});
