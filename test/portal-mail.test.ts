import test from 'ava';
import type { Page } from 'playwright-core';
import { banner } from '../src/cli/commands/serve.ts';
import { loadConfig } from '../src/config/load.ts';
import { freePort } from '../src/db/embedded.ts';
import type { OutboxMail } from '../src/db/models/outbox.ts';
import type { Ticket } from '../src/db/models/ticket.ts';
import { mayReadCapturedMail } from '../src/domain/ops/access.ts';
import type { Viewer } from '../src/domain/portal/access.ts';
import { startBrowser, screenshot, checkAccessibility, firstOf, type TestBrowser, signInWithDevAai } from './helpers/browser.ts';
import { HELPDESK, startTestHelpgate, testEnv, type TestHelpgate } from './helpers/helpgate.ts';
import { until } from './helpers/wait.ts';

// The Quick start's set-up: no relay (outbound mail is captured), the dev LS AAI stand-in, and
// mail from unknown senders held until they sign in.
let h: TestHelpgate;
let browser: TestBrowser;
let base: string;

test.before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  h = await startTestHelpgate(null, { portal: true, env: { HTTP_PORT: String(port), PUBLIC_URL: base, UNBOUND_SENDERS: 'hold', OUTBOUND_SMTP_URL: '' } });
  browser = await startBrowser();
});
test.after.always(async () => {
  await browser?.close();
  await h?.stop();
});

const RESEARCHER = 'researcher@university.example';

/** Signs in through the dev LS AAI, accepting the consents shown. */
async function signedIn(username: string): Promise<Page> {
  const page = await browser.newPage();
  await signInWithDevAai(page, base, username);
  return page;
}

function captured(filter: Record<string, unknown>, what: string): Promise<OutboxMail> {
  return until(() => h.hg.store.models.Outbox.findOne({ ...filter, state: 'captured' }, { raw: 0 }).lean<OutboxMail>(), { what, timeoutMs: 60_000 });
}

/** Opens the Mail page from the side bar and waits for a mail with this subject to be listed (reloading, as a person would). */
async function openMailPage(page: Page, subject: string): Promise<void> {
  await page.getByRole('link', { name: 'Mail', exact: true }).click();
  await page.getByRole('heading', { name: 'Mail', exact: true }).waitFor();
  await until(async () => {
    if (await page.getByRole('link', { name: subject }).first().isVisible()) return true;
    await page.reload();
    return false;
  }, { what: `"${subject}" on the Mail page` });
}

test.serial('the Mail page lists the acknowledgement of a mail sent in; its view shows the text, headers and links decoded', async (t) => {
  const page = await signedIn('researcher');
  // Signing in bound the researcher's verified address, so their mail opens a ticket.
  await h.send({ from: `Rita Researcher <${RESEARCHER}>`, to: HELPDESK, subject: 'Größe der Bilder – Frage', text: 'Which image size does the upload accept?' });
  const ack = await captured({ kind: 'ack', to: RESEARCHER }, 'the acknowledgement');
  const subject = ack.subject;
  t.regex(subject, /^\[CIE#\d+\] Größe der Bilder – Frage$/);

  await openMailPage(page, subject);
  // The acknowledgement and the notifications to First Line share the subject: the row is the acknowledgement's.
  const row = page.locator('table.mail-list tbody tr', { has: page.locator(`a[href="/mail/${ack._id}"]`) });
  t.deepEqual((await row.locator('td').allTextContents()).slice(0, 3).map((c) => c.trim()), [RESEARCHER, subject, 'acknowledgement']);
  await screenshot(page, import.meta.url, 'mail list');
  t.deepEqual(await checkAccessibility(page), [], 'Mail page');

  await row.getByRole('link', { name: subject }).click();
  await page.getByRole('heading', { name: subject, level: 1 }).waitFor();
  const text = (await page.locator('pre.mail-text').textContent())!;
  t.true(text.includes('Your request has been\nreceived and registered as ticket'), text);
  t.false(/=\r?\n|=3D|=C3/.test(text), 'no quoted-printable left');
  const headers = new Map<string, string>();
  for (const row of await page.locator('table.mail-headers tbody tr').all()) {
    const [name, value] = await row.locator('td').allTextContents();
    headers.set(name!.trim(), value!.trim());
  }
  t.is(headers.get('Subject'), subject, 'the subject header decoded');
  t.is(headers.get('Auto-Submitted'), 'auto-replied');
  t.is(headers.get('To'), RESEARCHER);
  const ticketUrl = `${base}/tickets/${ack.ticketNumber}`;
  t.true(await page.locator('.mail-links').getByRole('link', { name: ticketUrl }).isVisible(), 'the ticket link is listed');
  await screenshot(page, import.meta.url, 'acknowledgement');
  t.deepEqual(await checkAccessibility(page), [], 'message view');

  // The link works: it opens the ticket.
  await page.locator('.mail-links').getByRole('link', { name: ticketUrl }).click();
  await page.getByRole('heading', { name: 'Größe der Bilder – Frage' }).waitFor();

  // An id that is no captured mail is not found.
  t.is((await page.goto(`${base}/mail/abc`))!.status(), 404);
  t.is((await page.goto(`${base}/mail/${'0'.repeat(24)}`))!.status(), 404);
  await page.close();
});

test.serial('held mail: its notice is on the Mail page, and clicking the sign-in link there (chooser, Allow, confirm, Link) opens the ticket', async (t) => {
  const stranger = 'newcomer@elsewhere.example';
  await h.send({ from: `Nico Newcomer <${stranger}>`, to: HELPDESK, subject: 'Held until I sign in', text: 'I have no account here yet.', messageId: '<held-via-mail-page@elsewhere.example>' });
  const notice = await captured({ kind: 'held', to: stranger }, 'the sign-in link to the held sender');
  t.deepEqual(await h.hg.store.models.Ticket.find({ subject: 'Held until I sign in' }).lean(), [], 'not a ticket while held');

  const page = await signedIn('researcher');
  await openMailPage(page, notice.subject);
  await page.getByRole('link', { name: notice.subject }).click();
  await page.getByRole('heading', { name: notice.subject, level: 1 }).waitFor();
  const link = page.locator('.mail-links a', { hasText: '/auth/claim?token=' });
  const href = (await link.getAttribute('href'))!;
  t.regex(href, new RegExp(`^${base.replace(/\./g, '\\.')}/auth/claim\\?token=[A-Za-z0-9_-]{20,}$`), 'the whole link, not cut by quoted-printable');
  t.true((await page.locator('pre.mail-text').textContent())!.includes(href), 'and in the text as written');
  await screenshot(page, import.meta.url, 'held notice');

  await link.click();
  // The provider may remember the sign-in of a moment ago; each step it does show is gone through.
  const chooser = page.getByRole('button', { name: 'LifeScienceHostel' });
  const username = page.getByLabel('Username');
  const allow = page.getByRole('button', { name: 'Allow' });
  const yes = page.getByRole('button', { name: 'YES, Continue' });
  const confirm = page.getByRole('heading', { name: 'Link this mail address?' });
  const steps: string[] = [];
  for (;;) {
    const at = await firstOf(page, { chooser, username, allow, yes, confirm });
    steps.push(at);
    if (at === 'confirm') break;
    if (at === 'chooser') await chooser.first().click();
    else if (at === 'username') {
      await username.fill('researcher');
      await page.getByLabel('Password').fill('researcher-pass');
      await page.getByRole('button', { name: 'Sign in' }).click();
    } else await (at === 'allow' ? allow : yes).click();
    await page.waitForLoadState();
    if (steps.length > 10) throw new Error(`no end to the sign-in: ${steps.join(', ')}`);
  }
  t.true((await page.textContent('main'))!.includes(stranger));
  await page.getByRole('button', { name: /^Link / }).click();
  await page.getByText('is now linked to your identity').waitFor();

  const ticket = await until(() => h.hg.store.models.Ticket.findOne({ subject: 'Held until I sign in' }).lean<Ticket>(), { what: 'the released ticket' });
  t.is(ticket.requester.address, stranger);
  t.truthy(ticket.ownerSub, 'owned by who signed in');
  // Its acknowledgement is on the Mail page too.
  const ack = await captured({ kind: 'ack', to: stranger }, 'the acknowledgement of the released mail');
  await page.goto(base);
  await openMailPage(page, ack.subject);
  await page.close();
});

test('the start-up banner says whether mail from unknown senders is held or accepted, and where captured mail is read', (t) => {
  const held = banner(h.hg);
  t.regex(held, /Unknown senders held until the sender signs in .*UNBOUND_SENDERS=hold/);
  t.true(held.includes(`the portal's Mail page ${base}/mail`), held);
  const accepting = banner({ ...h.hg, config: loadConfig(testEnv({ UNBOUND_SENDERS: 'accept', OUTBOUND_SMTP_URL: 'smtp://relay.example:25' })) });
  t.regex(accepting, /Unknown senders accepted: mail from any address opens a ticket \(UNBOUND_SENDERS=accept\)/);
  t.regex(accepting, /Outbound mail relay smtp:\/\/relay\.example:25/);
});

test('captured mail is for agents, and in the dev set-up for anyone signed in; with a relay there is none to read', (t) => {
  const viewer = (agent: boolean) => ({ agent, units: agent ? ['first-line'] : [], addresses: [], user: {} }) as unknown as Viewer;
  const dev = loadConfig(testEnv({ OUTBOUND_SMTP_URL: '' }));
  const production = loadConfig(testEnv({ OUTBOUND_SMTP_URL: '', OIDC_ISSUER: 'https://login.aai.lifescience-ri.eu/oidc/', OIDC_CLIENT_ID: 'id', OIDC_CLIENT_SECRET: 'secret' }));
  const relayed = loadConfig(testEnv({ OUTBOUND_SMTP_URL: 'smtp://relay.example:25' }));
  t.true(mayReadCapturedMail(dev, viewer(false)));
  t.true(mayReadCapturedMail(production, viewer(true)));
  t.false(mayReadCapturedMail(production, viewer(false)));
  t.false(mayReadCapturedMail(relayed, viewer(true)));
});
