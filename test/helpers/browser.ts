/**
 * Real headless Chromium for tests that look at pages the way a reader's browser does.
 *
 * The browser is Debian's `chromium` package (playwright-core drives it; it downloads no
 * browser of its own). Set CHROMIUM_PATH to use another binary.
 *
 *     const chromium = await startBrowser();
 *     test.after.always(() => chromium.close());
 *     const page = await chromium.newPage();
 *     await page.goto(url);
 *     await screenshot(page, import.meta.url, 'ticket list');
 *     t.deepEqual(await checkAccessibility(page), []);
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AxeBuilder } from '@axe-core/playwright';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Locator, type Page } from 'playwright-core';
import { projectRoot } from '../../src/config/load.ts';

export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

export interface TestBrowser {
  browser: Browser;
  /**
   * A page in a fresh context of its own: no cookies, storage or cache shared with other
   * pages, so each test logs in as whom it likes. Closed by `close()` if not before.
   */
  newPage(options?: BrowserContextOptions): Promise<Page>;
  /** Closes every context and the browser; safe to call twice. */
  close(): Promise<void>;
}

/** Fails fast instead of ava's two-minute timeout when a selector or navigation never comes. */
const ACTION_TIMEOUT_MS = 10_000;

export async function startBrowser(): Promise<TestBrowser> {
  const executablePath = process.env.CHROMIUM_PATH || DEFAULT_CHROMIUM_PATH;
  if (!existsSync(executablePath)) {
    throw new Error(
      `Chromium not found at ${executablePath}: the Debian package chromium is needed (apt-get install chromium), ` +
        'or set CHROMIUM_PATH to a Chromium binary.',
    );
  }
  const browser = await chromium.launch({
    executablePath,
    // The sandbox needs user namespaces that containers and CI runners rarely grant; test
    // browsers only open pages the tests serve on 127.0.0.1. No background networking
    // (updates, safe browsing), so every request a test sees is one its page made.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const contexts = new Set<BrowserContext>();
  let closed = false;
  return {
    browser,
    async newPage(options) {
      const context = await browser.newContext(options);
      contexts.add(context);
      context.on('close', () => contexts.delete(context));
      context.setDefaultTimeout(ACTION_TIMEOUT_MS);
      const page = await context.newPage();
      // Closing the page is how tests say they are done with it; its context goes too.
      page.on('close', () => void context.close().catch(() => {}));
      return page;
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...contexts].map((c) => c.close()));
      await browser.close();
    },
  };
}

const shotCounters = new Map<string, number>();

/**
 * Saves a PNG of the page as test/screenshots/<test file>/<NN>-<step>.png (the folder is not
 * tracked) so a failing run can be looked at. `testFile` is the test's `import.meta.url` or
 * its name ('portal-login'); NN counts up per test file in the order the shots are taken.
 */
export async function screenshot(page: Page, testFile: string, step: string): Promise<string> {
  const name = path.basename(testFile.startsWith('file:') ? fileURLToPath(testFile) : testFile).replace(/\.test\.[cm]?[jt]s$/, '');
  const n = (shotCounters.get(name) ?? 0) + 1;
  shotCounters.set(name, n);
  const dir = path.join(projectRoot, 'test', 'screenshots', name);
  await mkdir(dir, { recursive: true });
  const slug = step.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'step';
  const file = path.join(dir, `${String(n).padStart(2, '0')}-${slug}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** One accessibility problem, in a shape that reads well in a failed `t.deepEqual`. */
export interface AccessibilityViolation {
  id: string;
  impact: 'serious' | 'critical';
  help: string;
  /** CSS selectors of the offending elements. */
  targets: string[];
}

/**
 * Runs axe-core on the page as it is now and returns the serious and critical violations
 * (minor and moderate ones are left to review). A page that passes gives [].
 */
export async function checkAccessibility(page: Page, options: { exclude?: string[] } = {}): Promise<AccessibilityViolation[]> {
  let builder = new AxeBuilder({ page });
  for (const selector of options.exclude ?? []) builder = builder.exclude(selector);
  const results = await builder.analyze();
  const violations: AccessibilityViolation[] = [];
  for (const v of results.violations) {
    if (v.impact !== 'serious' && v.impact !== 'critical') continue;
    violations.push({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.map(String).join(' ')) });
  }
  return violations;
}

/** Something a test waits for: an element that becomes visible, or a condition on the page's URL. */
export type Sign = Locator | ((url: URL) => boolean);

/**
 * Waits until the first of several possible pages shows and returns its name. A sign-in can end
 * on the provider's consent page, helpgate's own confirmation or the home page, depending on
 * what the person agreed to before; checking `isVisible()` once right after a click races the
 * navigation, so this looks again until one of them is there.
 *
 *     const at = await firstOf(page, { allow: page.getByRole('button', { name: 'Allow' }), home: (u) => u.origin === base });
 */
export async function firstOf<K extends string>(page: Page, signs: Record<K, Sign>, timeoutMs = ACTION_TIMEOUT_MS): Promise<K> {
  const deadline = Date.now() + timeoutMs;
  const names = Object.keys(signs) as K[];
  for (;;) {
    for (const name of names) {
      const sign = signs[name];
      const seen = typeof sign === 'function' ? sign(new URL(page.url())) : await sign.isVisible().catch(() => false);
      if (seen) return name;
    }
    if (Date.now() > deadline) {
      const shown = (await page.locator('body').innerText().catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 300);
      throw new Error(`none of ${names.join(', ')} showed within ${timeoutMs} ms; at ${page.url()} the page says: ${shown}`);
    }
    await page.waitForTimeout(100);
  }
}

/** A heading that says the person arrived: requesters land on My tickets, agents on their queue. */
const LANDED = /^(My tickets|Queue of .*)$/;

/**
 * Signs in through the dev LS AAI as a person does: the chooser (search "LifeScienceHostel"),
 * the institution's sign-in, the provider's Allow when it asks, and YES on helpgate's "Confirm
 * your information" when it asks; ends where the portal sends the person. `start`: a portal
 * address that needs a person (default: the welcome page's "Connect to LS AAI").
 */
export async function signInWithDevAai(page: Page, base: string, username: string, opts: { start?: string } = {}): Promise<{ consentAsked: boolean }> {
  await page.goto(base + (opts.start ?? ''));
  if (!opts.start) await page.getByRole('link', { name: 'Connect to LS AAI' }).click();
  await page.getByLabel('Search for your institution').fill('LifeScienceHostel');
  await page.getByLabel('Search for your institution').press('Enter');
  await page.getByRole('button', { name: 'LifeScienceHostel' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(`${username}-pass`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const allow = page.getByRole('button', { name: 'Allow' });
  const yes = page.getByRole('button', { name: 'YES, Continue' });
  const home = page.getByRole('heading', { level: 1, name: LANDED });
  let consentAsked = false;
  for (;;) {
    const at = await firstOf(page, { allow, yes, home });
    if (at === 'home') return { consentAsked };
    if (at === 'yes') consentAsked = true;
    const button = at === 'allow' ? allow : yes;
    await button.click();
    await button.waitFor({ state: 'hidden' });
  }
}
