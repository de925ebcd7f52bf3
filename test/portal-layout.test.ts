/**
 * The portal's look on a phone (375 × 800) and a desktop (1280 × 800): every page without
 * sideways scrolling and axe-clean at both widths, screenshots of each (test/screenshots/
 * portal-layout/, not tracked), the main task done with the keyboard only, static assets,
 * the favicon, 404s, and the identity details on "Confirm your information" and Account.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { Page } from 'playwright-core';
import { projectRoot } from '../src/config/load.ts';
import { freePort } from '../src/db/embedded.ts';
import { checkAccessibility, firstOf, screenshot, startBrowser, type TestBrowser } from './helpers/browser.ts';
import { HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { ticketOf } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';

/** The browser's globals the functions run inside the page use (the project compiles without the DOM library). */
interface InPage {
  matches(selector: string): boolean;
  textContent: string | null;
  id: string;
}
declare const document: {
  documentElement: { scrollWidth: number };
  activeElement: InPage | null;
  createRange(): { selectNodeContents(node: unknown): void; getBoundingClientRect(): { height: number } };
};
declare const window: { innerWidth: number };
declare function getComputedStyle(el: unknown): { backgroundColor: string; fontFamily: string; fontSize: string; fontWeight: string; lineHeight: string };

const PHONE = { width: 375, height: 800 };
const DESKTOP = { width: 1280, height: 800 };
const VIEWPORTS = [PHONE, DESKTOP];
const REQUESTER = 'researcher@university.example';
const AFFILIATIONS = 'member@university.example, faculty@university.example';

let h: TestHelpgate;
let browser: TestBrowser;
let base: string;
/** Signed in once each, then shown every page at both widths. */
let researcher: Page;
let agent: Page;
/** A ticket of the researcher, in First Line's queue. */
let ticket = 0;

type Who = 'anonymous' | 'researcher' | 'agent';

/**
 * Every page of the portal, as a person gets to it. A new page is one more line here: who
 * looks at it, its address, and the heading that says it is there.
 */
const PAGES: { name: string; who: Who; path: () => string; heading: string | RegExp }[] = [
  { name: 'welcome', who: 'anonymous', path: () => '/', heading: 'Cancer Image Europe Helpdesk' },
  { name: 'not found', who: 'anonymous', path: () => '/no/such/page', heading: 'Page not found' },
  { name: 'my tickets', who: 'researcher', path: () => '/', heading: 'My tickets' },
  { name: 'my tickets none match', who: 'researcher', path: () => '/?q=no-such-words', heading: 'No ticket matches' },
  { name: 'new ticket', who: 'researcher', path: () => '/tickets/new', heading: 'New ticket' },
  { name: 'ticket', who: 'researcher', path: () => `/tickets/${ticket}`, heading: 'Scanner export fails for a very long series description' },
  { name: 'account', who: 'researcher', path: () => '/account', heading: 'Account' },
  { name: 'queue', who: 'agent', path: () => '/queue/first-line', heading: 'Queue of First Line Support' },
  { name: 'agent ticket', who: 'agent', path: () => `/tickets/${ticket}`, heading: 'Scanner export fails for a very long series description' },
  { name: 'agent not found', who: 'agent', path: () => '/no/such/page', heading: 'Page not found' },
  { name: 'mail', who: 'agent', path: () => '/mail', heading: 'Mail' },
  { name: 'mail message', who: 'agent', path: () => `/mail/${capturedMail}`, heading: /^\[CIE#\d+\]/ },
  { name: 'held mail', who: 'agent', path: () => '/ops/held', heading: 'Held mail' },
  { name: 'quarantine', who: 'agent', path: () => '/ops/quarantine', heading: 'Quarantine' },
  { name: 'failed mail', who: 'agent', path: () => '/ops/failed-mail', heading: 'Failed mail' },
];
/** A captured outbound mail (the acknowledgement of the ticket), for the Mail page's message view. */
let capturedMail = '';

test.before(async () => {
  // Only this run's screenshots, for a reviewer to page through.
  rmSync(path.join(projectRoot, 'test', 'screenshots', 'portal-layout'), { recursive: true, force: true });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // Outbound mail captured (the Mail page exists then), and mail from strangers held (a row on Held mail).
  h = await startTestHelpgate(null, { portal: true, env: { HTTP_PORT: String(port), PUBLIC_URL: base, OUTBOUND_SMTP_URL: '', UNBOUND_SENDERS: 'hold' } });
  browser = await startBrowser();
});
test.after.always(async () => {
  await browser?.close();
  await h?.stop();
});

/** The page fits its width: nothing sticks out sideways. */
async function widths(page: Page): Promise<{ scrollWidth: number; innerWidth: number }> {
  return page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
}

/** No sideways scrolling, no serious accessibility problem, and a screenshot to look at. */
async function inspect(t: ExecutionContext, page: Page, name: string): Promise<void> {
  const width = page.viewportSize()!.width;
  const w = await widths(page);
  t.true(w.scrollWidth <= w.innerWidth, `${name} at ${width} px: the document is ${w.scrollWidth} px wide`);
  t.deepEqual(await checkAccessibility(page), [], `${name} at ${width} px`);
  await screenshot(page, import.meta.url, `${name} ${width}`);
}

/**
 * Signs in through the dev LS AAI, looking at each page of the way (chooser, institution's
 * sign-in, the provider's consent, "Confirm your information") at the page's width.
 */
async function signIn(t: ExecutionContext, username: string, viewport: { width: number; height: number }): Promise<Page> {
  const page = await browser.newPage({ viewport });
  await page.goto(base);
  await page.getByRole('link', { name: 'Connect to LS AAI' }).click();
  await page.getByRole('heading', { name: 'Choose your Identity Provider' }).waitFor();
  await inspect(t, page, `${username} chooser`);
  await page.getByLabel('Search for your institution').fill('LifeScienceHostel');
  await page.getByLabel('Search for your institution').press('Enter');
  await page.getByRole('button', { name: 'LifeScienceHostel' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(`${username}-pass`);
  await inspect(t, page, `${username} institution sign-in`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const allow = page.getByRole('button', { name: 'Allow' });
  const yes = page.getByRole('button', { name: 'YES, Continue' });
  if ((await firstOf(page, { allow, yes })) === 'allow') {
    await inspect(t, page, `${username} provider consent`);
    await allow.click();
  }
  await page.getByRole('heading', { name: 'Confirm your information' }).waitFor();
  await inspect(t, page, `${username} confirm your information`);
  return page;
}

test.serial('the sign-in flow fits a phone and a desktop; the affiliations LS AAI releases are shown to confirm', async (t) => {
  researcher = await signIn(t, 'researcher', PHONE);
  const received = researcher.locator('dl.facts dt:text-is("Affiliation") + dd');
  t.is((await received.textContent())!.trim(), AFFILIATIONS);
  await researcher.getByRole('button', { name: 'YES, Continue' }).click();
  await researcher.getByRole('heading', { name: 'My tickets' }).waitFor();

  agent = await signIn(t, 'fl-agent', DESKTOP);
  t.is((await agent.locator('dl.facts dt:text-is("Affiliation") + dd').textContent())!.trim(), 'member@eucaim.example.org, employee@eucaim.example.org');
  await agent.getByRole('button', { name: 'YES, Continue' }).click();
  await agent.waitForURL((u) => u.origin === base && !u.pathname.startsWith('/consent'));

  const messageId = `<layout-${Date.now()}@university.example>`;
  await h.send({
    from: REQUESTER,
    to: HELPDESK,
    subject: 'Scanner export fails for a very long series description',
    text: `The export of series 1.2.840.113619.2.55.3.604688119.969.1268071029.320 stops. The log is at https://data.university.example/${'very-long-path-segment/'.repeat(6)}export.log`,
    messageId,
  });
  ticket = await ticketOf(h, messageId);
  await h.send({ from: 'stranger@elsewhere.example', to: HELPDESK, subject: 'A question from someone not yet signed in', text: 'Hello.', messageId: `<layout-held-${Date.now()}@elsewhere.example>` });
  const ack = await until(async () => h.hg.store.models.Outbox.findOne({ kind: 'ack', to: REQUESTER }, { _id: 1 }).lean<{ _id: unknown }>(), { what: 'the acknowledgement captured' });
  capturedMail = String(ack._id);
  await until(async () => (await h.inbox()).some((i) => i.state === 'held'), { what: 'the stranger’s mail held' });
  // The requester's list is written just after the ticket: wait for it as a person would.
  await until(async () => {
    await researcher.goto(base);
    return (await researcher.textContent('main'))!.includes(`CIE#${ticket}`);
  }, { what: 'the mailed ticket in My tickets' });
});

for (const viewport of VIEWPORTS) {
  test.serial(`every page at ${viewport.width} × ${viewport.height}: no sideways scrolling, axe clean, screenshots`, async (t) => {
    const anonymous = await browser.newPage({ viewport });
    const pages: Record<Who, Page> = { anonymous, researcher, agent };
    for (const p of PAGES) {
      const page = pages[p.who];
      await page.setViewportSize(viewport);
      await page.goto(base + p.path());
      await page.getByRole('heading', { name: p.heading }).first().waitFor();
      await inspect(t, page, p.name);
    }
    await anonymous.close();
  });
}

test.serial('navigation: a side bar on a desktop, a strip above the content on a phone; tables become cards on a phone', async (t) => {
  const page = researcher;
  await page.setViewportSize(DESKTOP);
  await page.goto(base);
  const nav = page.getByRole('navigation', { name: 'Portal' });
  const main = page.locator('main');
  let n = (await nav.boundingBox())!;
  let m = (await main.boundingBox())!;
  t.true(n.x + n.width <= m.x, 'the navigation is left of the content');
  t.true(n.height > 400, 'and runs down the page');
  // Dates in a list stay on one line.
  const time = page.locator('table.tickets time').first();
  t.true((await time.boundingBox())!.height < 30, 'the date does not wrap');
  // Badges say the state in words and in colour.
  const badge = page.locator('table.tickets .badge').first();
  t.is((await badge.textContent())!.trim(), 'new');
  t.not(await badge.evaluate((el) => getComputedStyle(el).backgroundColor), 'rgba(0, 0, 0, 0)');

  // In the queue too, every column but the subject keeps to one line (dates, due times).
  await agent.setViewportSize(DESKTOP);
  await agent.goto(`${base}/queue/first-line`);
  const cells = await agent
    .locator('table.tickets tbody tr')
    .first()
    .locator('td')
    .evaluateAll((tds) =>
      tds.map((td) => {
        // The cell is as tall as the row; its text is as tall as its lines.
        const text = document.createRange();
        text.selectNodeContents(td);
        return { text: td.textContent!.trim(), lines: Math.round(text.getBoundingClientRect().height / parseFloat(getComputedStyle(td).lineHeight)) };
      }),
    );
  t.true(cells.length >= 5);
  for (const [i, cell] of cells.entries()) if (i !== 1) t.is(cell.lines, 1, `"${cell.text}" is on one line`);

  await page.setViewportSize(PHONE);
  n = (await nav.boundingBox())!;
  m = (await main.boundingBox())!;
  t.true(n.y + n.height <= m.y, 'the navigation is above the content');
  t.true(n.height < 100, 'as a strip');
  const row = page.locator('table.tickets tbody tr').first();
  const lefts = await row.locator('td').evaluateAll((tds) => tds.map((td) => td.getBoundingClientRect().x));
  t.true(lefts.every((x) => Math.abs(x - lefts[0]!) < 2), 'the cells of a row are stacked, not side by side');
});

test.serial('form controls match: a select has the font and height of a text field', async (t) => {
  const page = researcher;
  await page.setViewportSize(DESKTOP);
  await page.goto(`${base}/tickets/new`);
  const style = (selector: string) =>
    page.locator(selector).evaluate((el) => {
      const s = getComputedStyle(el);
      return { font: `${s.fontFamily} ${s.fontSize} ${s.fontWeight}`, height: Math.round(el.getBoundingClientRect().height) };
    });
  t.deepEqual(await style('#category'), await style('#subject'));
});

/** Presses Tab until the focused element matches `selector`; fails after `max` presses. */
async function tabTo(page: Page, selector: string, max = 40): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
  }
  throw new Error(`${max} presses of Tab did not reach ${selector}`);
}

for (const viewport of VIEWPORTS) {
  test.serial(`with the keyboard only at ${viewport.width} px: skip to the content, open a new ticket, fill it in and submit it`, async (t) => {
    const page = researcher;
    await page.setViewportSize(viewport);
    await page.goto(base);
    await page.keyboard.press('Tab');
    t.true(await page.evaluate(() => document.activeElement?.textContent === 'Skip to the content'), 'the first stop skips to the content');
    t.true(await page.getByRole('link', { name: 'Skip to the content' }).isVisible(), 'and shows itself when focused');
    await tabTo(page, 'a[href="/tickets/new"]');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'New ticket' }).waitFor();
    const subject = `Typed without a mouse at ${viewport.width} px`;
    await tabTo(page, '#subject');
    await page.keyboard.type(subject);
    await page.keyboard.press('Tab');
    t.true(await page.evaluate(() => document.activeElement?.id === 'category'));
    // A closed select takes the first letters of an option.
    await page.keyboard.type('Data');
    t.not(await page.locator('#category').inputValue(), '', 'a category is chosen');
    await page.keyboard.press('Tab');
    await page.keyboard.type('Every step of this ticket was taken with the keyboard.');
    await tabTo(page, 'button[type=submit]');
    t.is((await page.evaluate(() => document.activeElement?.textContent))?.trim(), 'Submit');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/tickets\/\d+$/);
    await page.getByRole('heading', { name: subject }).waitFor();
    await screenshot(page, import.meta.url, `keyboard ticket ${viewport.width}`);
    t.pass();
  });
}

test.serial('the favicon and the stylesheet are served with long caching, nosniff, and an address that changes with the content', async (t) => {
  const ico = await fetch(`${base}/favicon.ico`, { redirect: 'manual' });
  t.is(ico.status, 200);
  t.is(ico.headers.get('content-type'), 'image/x-icon');
  t.deepEqual([...new Uint8Array(await ico.arrayBuffer()).slice(0, 4)], [0, 0, 1, 0], 'an ICO file');

  const html = await (await fetch(base)).text();
  for (const [file, type] of [['portal.css', 'text/css; charset=utf-8'], ['favicon.svg', 'image/svg+xml'], ['logo.svg', 'image/svg+xml']] as const) {
    const hash = createHash('sha256').update(readFileSync(path.join(projectRoot, 'web', file))).digest('hex').slice(0, 10);
    const [name, ext] = file.split('.');
    const url = `/static/${name}.${hash}.${ext}`;
    t.true(html.includes(`"${url}"`), `the page links ${url}`);
    const res = await fetch(base + url);
    t.is(res.status, 200, url);
    t.is(res.headers.get('content-type'), type);
    t.is(res.headers.get('cache-control'), 'public, max-age=31536000, immutable', url);
    t.is(res.headers.get('x-content-type-options'), 'nosniff', url);
    // An address with another hash (a page from before a change) gets today's file, never kept.
    const stale = await fetch(`${base}/static/${name}.0123456789.${ext}`);
    t.is(stale.status, 200);
    t.is(stale.headers.get('cache-control'), 'no-cache');
  }
  const missing = await fetch(`${base}/static/nothing.css`, { redirect: 'manual' });
  t.is(missing.status, 404);
});

test.serial('an unknown address answers 404 with a friendly page, to anonymous and signed-in visitors alike, never a sign-in', async (t) => {
  for (const url of ['/no/such/page', '/wp-login.php', '/favicon.png', '/tickets-old']) {
    const res = await fetch(base + url, { redirect: 'manual' });
    t.is(res.status, 404, url);
    t.true((await res.text()).includes('Page not found'), url);
  }
  // Pages that need a person still send an anonymous visitor to sign in.
  const mine = await fetch(`${base}/tickets/new`, { redirect: 'manual' });
  t.is(mine.status, 302);
  t.regex(mine.headers.get('location') ?? '', /^\/auth\/login\?return=/);

  // An anonymous visit starts no sign-in and logs no error (the favicon used to).
  const page = await browser.newPage({ viewport: DESKTOP });
  const elsewhere: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(base)) elsewhere.push(r.url());
  });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  const res = await page.goto(`${base}/no/such/page`);
  t.is(res!.status(), 404);
  t.is(new URL(page.url()).pathname, '/no/such/page');
  // The 404 itself is reported on the console; what follows must be quiet.
  errors.length = 0;
  await page.goto(base);
  await page.waitForLoadState('networkidle');
  t.deepEqual(elsewhere, [], 'no request left the portal');
  t.deepEqual(errors, [], 'no console error');
  await page.close();

  const signedIn = await researcher.goto(`${base}/no/such/page`);
  t.is(signedIn!.status(), 404);
  t.is(new URL(researcher.url()).pathname, '/no/such/page');
  await researcher.getByRole('link', { name: 'Go to My tickets' }).waitFor();
});

test.serial('Account shows the affiliations; the only linked address cannot be removed, on the page or by a forged post', async (t) => {
  const page = researcher;
  await page.setViewportSize(DESKTOP);
  await page.goto(`${base}/account`);
  t.is((await page.locator('dl.facts dt:text-is("Affiliation") + dd').textContent())!.trim(), AFFILIATIONS);
  const addresses = page.locator('ul.addresses li');
  t.is(await addresses.count(), 1);
  t.is(await page.getByRole('button', { name: `Remove ${REQUESTER}` }).count(), 0, 'no Remove button');
  t.true((await addresses.textContent())!.includes('link another one before you remove it'));

  const token = await page.locator('input[name=_csrf]').first().getAttribute('value');
  const res = await page.request.post(`${base}/account/addresses/remove`, { form: { _csrf: token!, address: REQUESTER }, maxRedirects: 0 });
  t.is(res.status(), 409);
  t.true((await res.text()).includes('is your only linked address'));
  t.is(await h.hg.store.models.AddressBinding.countDocuments({ _id: REQUESTER }), 1, 'still linked');
});
