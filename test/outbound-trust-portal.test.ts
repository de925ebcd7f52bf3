import { readFileSync } from 'node:fs';
import test from 'ava';
import type { Page } from 'playwright-core';
import { freePort } from '../src/db/embedded.ts';
import { checkAccessibility, screenshot, startBrowser, type TestBrowser, signInWithDevAai } from './helpers/browser.ts';
import { HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { quiet } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';

const REQUESTER = 'researcher@university.example';

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

/** Signs in through the dev LS AAI, accepting the consents shown. */
async function signedIn(username: string): Promise<Page> {
  const page = await browser.newPage();
  await signInWithDevAai(page, base, username);
  return page;
}

/** The Postfix report of test/fixtures for the mail `ack`, delivered to its bounce address from <>. */
async function bounce(ack: { envelope: { mailFrom: string | null }; parsed: { messageId: string | null } }): Promise<void> {
  let raw = readFileSync(new URL('./fixtures/dsn-postfix-hard-bounce-verp.eml', import.meta.url), 'utf8');
  raw = raw.replaceAll('{{RETURN_PATH}}', ack.envelope.mailFrom!).replaceAll('{{RECIPIENT}}', REQUESTER).replaceAll('{{MESSAGE_ID}}', ack.parsed.messageId!);
  await h.send({ envelope: { from: false, to: [ack.envelope.mailFrom!] }, raw: raw.replace(/\r?\n/g, '\r\n') });
}

test.serial('agents see a bounced mail as an internal note and the address under "Mail that does not arrive"; the requester sees neither', async (t) => {
  const { messageId } = await h.send({ from: REQUESTER, to: HELPDESK, subject: 'Access to the imaging archive', text: 'Which form do I fill in?' });
  const ack = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(REQUESTER) && m.parsed.inReplyTo === messageId, 'the acknowledgement');
  await until(() => h.hg.store.models.Outbox.exists({ messageId: ack.parsed.messageId, state: 'sent' }), { what: 'the acknowledgement sent' });
  await bounce(ack);
  await until(() => h.hg.store.models.Article.exists({ ticketNumber: 100001, authorRole: 'system' }), { what: 'the bounce note' });
  await quiet(h);

  const fl = await signedIn('fl-agent');
  await fl.goto(`${base}/tickets/100001`);
  await fl.getByRole('heading', { name: 'Access to the imaging archive' }).waitFor();
  const box = fl.getByRole('region', { name: 'Mail that does not arrive' });
  t.regex((await box.textContent())!, /researcher@university\.example: our mail bounced once, last at .* \(5\.1\.1 550 5\.1\.1 .*User unknown/);
  const note = fl.locator('li.article.internal');
  t.is(await note.count(), 1);
  t.regex((await note.textContent())!, /not sent to the requester[\s\S]*could not be delivered/);
  await screenshot(fl, import.meta.url, 'agent-sees-bounce');
  t.deepEqual(await checkAccessibility(fl), [], 'agent ticket page with a bounce');

  const me = await signedIn('researcher');
  await me.goto(`${base}/tickets/100001`);
  await me.getByRole('heading', { name: 'Access to the imaging archive' }).waitFor();
  const page = (await me.locator('main').textContent())!;
  t.false(page.includes('could not be delivered'), 'the note is for agents');
  t.false(page.includes('Mail that does not arrive'));
  t.true(page.includes('Which form do I fill in?'));
});
