import { createHash } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { Page } from 'playwright-core';
import { freePort } from '../src/db/embedded.ts';
import { startBrowser, screenshot, checkAccessibility, firstOf, type TestBrowser } from './helpers/browser.ts';
import { FIRST_LINE, HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { until } from './helpers/wait.ts';

let h: TestHelpgate;
let browser: TestBrowser;
let base: string;
const aupFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'helpgate-aup-')), 'aup.md');
const writeAup = (version: number) => writeFileSync(aupFile, `---\nversion: ${version}\ntitle: Test Acceptable Use Policy\n---\nBe kind (version ${version}).\n`);

test.before(async () => {
  writeAup(1);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  h = await startTestHelpgate(null, { portal: true, env: { HTTP_PORT: String(port), PUBLIC_URL: base, UNBOUND_SENDERS: 'hold', AUP_FILE: aupFile } });
  browser = await startBrowser();
});
test.after.always(async () => {
  await browser?.close();
  await h?.stop();
});

/** Signs in through the real dev LS AAI: chooser → LifeScienceHostel → login → allow. Stops at helpgate's consent page or home. */
async function signIn(page: Page, username: string, shots?: { t: string; violations: object[] }): Promise<void> {
  await page.goto(base);
  await page.getByRole('link', { name: 'Connect to LS AAI' }).click();
  await page.getByRole('heading', { name: 'Choose your Identity Provider' }).waitFor();
  if (shots) {
    await screenshot(page, shots.t, 'chooser');
    shots.violations.push(...(await checkAccessibility(page)).map((v) => ({ ...v, page: 'chooser' })));
  }
  await page.getByLabel('Search for your institution').fill('LifeScienceHostel');
  await page.getByLabel('Search for your institution').press('Enter');
  await page.getByRole('button', { name: 'LifeScienceHostel' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(`${username}-pass`);
  if (shots) {
    await screenshot(page, shots.t, 'login');
    shots.violations.push(...(await checkAccessibility(page)).map((v) => ({ ...v, page: 'login' })));
  }
  await page.getByRole('button', { name: 'Sign in' }).click();
  const allow = page.getByRole('button', { name: 'Allow' });
  if ((await firstOf(page, { allow, back: (u) => u.origin === base })) === 'allow') {
    if (shots) {
      await screenshot(page, shots.t, 'provider-consent');
      shots.violations.push(...(await checkAccessibility(page)).map((v) => ({ ...v, page: 'provider consent' })));
    }
    await allow.click();
  }
  await page.waitForURL((u) => u.origin === base);
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage();
  page.on('dialog', (d) => void d.dismiss());
  return page;
}

test.serial('the whole walk: sign in, consent, new ticket with a missing field, acknowledgement, mail and web replies, sign out', async (t) => {
  const page = await newPage();
  const shots = { t: 'walk', violations: [] as object[] };
  await page.goto(base);
  await screenshot(page, shots.t, 'signed-out');
  t.deepEqual(await checkAccessibility(page), [], 'start page');
  await signIn(page, 'researcher', shots);
  t.deepEqual(shots.violations, [], 'the dev LS AAI pages');

  await page.getByRole('heading', { name: 'Confirm your information' }).waitFor();
  t.true((await page.textContent('main'))!.includes('researcher@university.example'));
  await screenshot(page, shots.t, 'consent');
  t.deepEqual(await checkAccessibility(page), [], 'consent page');
  await page.getByRole('button', { name: 'YES, Continue' }).click();

  await page.getByRole('heading', { name: 'My tickets' }).waitFor();
  await screenshot(page, shots.t, 'home');
  t.deepEqual(await checkAccessibility(page), [], 'home');
  await page.getByRole('link', { name: 'New ticket', exact: true }).click();
  await page.getByRole('heading', { name: 'New ticket' }).waitFor();
  await page.getByLabel('Subject *').fill('Cannot upload DICOM series');
  await page.getByLabel('Description *').fill('The upload stops at 80 % with error E42.');
  await page.getByLabel('Attachments').setInputFiles([
    { name: 'upload.log', mimeType: 'text/plain', buffer: Buffer.from('E42 at 80 %\n') },
    { name: 'series.txt', mimeType: 'text/plain', buffer: Buffer.from('series 7\n') },
  ]);
  await page.getByRole('button', { name: 'Submit' }).click();
  // The error summary: at the top, focused, each problem a link to its field.
  const summary = page.getByRole('alert');
  await summary.getByText('There is a problem').waitFor();
  t.is(await page.evaluate('document.activeElement?.id'), 'error-summary', 'focus moves to the error summary');
  t.is(await summary.getByRole('link', { name: 'Choose a category.' }).getAttribute('href'), '#category');
  t.is(await page.getByLabel('Description *').inputValue(), 'The upload stops at 80 % with error E42.', 'typed text is kept');
  t.is(await page.getByLabel('Subject *').inputValue(), 'Cannot upload DICOM series');
  // The files are kept on the server for the next try, each with a box to remove it.
  const kept = page.getByRole('group', { name: 'Files kept from your last try' });
  t.deepEqual(await kept.locator('.file-name').allTextContents(), ['upload.log', 'series.txt']);
  await screenshot(page, shots.t, 'missing-field');
  t.deepEqual(await checkAccessibility(page), [], 'form with an error');
  await summary.getByRole('link', { name: 'Choose a category.' }).click();
  t.is(await page.evaluate('document.activeElement?.id'), 'category', 'the summary link leads to the field');
  await page.getByLabel('Category *').selectOption('data-upload');
  await kept.getByLabel('Remove series.txt').check();
  await page.getByRole('button', { name: 'Submit' }).click();

  await page.waitForURL(/\/tickets\/\d+$/);
  const number = Number(/\/tickets\/(\d+)$/.exec(page.url())![1]);
  t.true((await page.textContent('.ticket-id'))!.includes(`CIE#${number}`));
  t.regex((await page.getByRole('status').textContent())!, new RegExp(`Your ticket CIE#${number} was created`), 'a success message');
  t.deepEqual((await h.articles(number))[0]!.attachments.map((a) => a.filename), ['upload.log'], 'the kept file went with the ticket, the removed one did not');
  t.true((await page.locator('ul.attachments').textContent())!.includes('upload.log'));
  await screenshot(page, shots.t, 'ticket');
  t.deepEqual(await checkAccessibility(page), [], 'ticket page');

  const ack = await h.relay.waitFor((m) => m.envelope.rcptTo.includes('researcher@university.example') && m.parsed.subject.includes(`[CIE#${number}]`), 'the acknowledgement');
  t.is(ack.header('auto-submitted'), 'auto-replied');
  t.true(ack.parsed.text.includes(`${base}/tickets/${number}`));

  // The requester answers by mail: it appears on the page.
  await h.send({ from: 'researcher@university.example', to: HELPDESK, subject: `Re: [CIE#${number}] Cannot upload DICOM series`, text: 'It also fails with a smaller series.' });
  await until(async () => {
    await page.reload();
    return (await page.textContent('main'))!.includes('It also fails with a smaller series.');
  }, { what: 'the mailed reply on the page' });
  await screenshot(page, shots.t, 'mail-reply-shown');

  // A reply on the web reaches the unit by mail.
  await page.getByLabel('Your reply').fill('Here is the log file you may need.');
  await page.getByRole('button', { name: 'Send reply' }).click();
  await page.getByText('Your reply was added and mailed.').waitFor();
  await screenshot(page, shots.t, 'web-reply');
  const toUnit = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(FIRST_LINE[0]!) && m.parsed.text.includes('Here is the log file you may need.'), 'the web reply at First Line');
  t.true(toUnit.parsed.subject.includes(`[CIE#${number}]`));

  // The list shows it; search finds it by text.
  await page.goto(`${base}/?q=e42`);
  t.true((await page.textContent('table.tickets'))!.includes(`CIE#${number}`));
  await screenshot(page, shots.t, 'search');
  await page.locator('summary').click();
  await screenshot(page, shots.t, 'menu');

  await page.getByRole('button', { name: 'Sign out' }).click();
  // RP-initiated logout at the provider, then back to the start page.
  const confirm = page.getByRole('button', { name: /sign me out/i });
  const connect = page.getByRole('link', { name: 'Connect to LS AAI' });
  if ((await firstOf(page, { confirm, connect })) === 'confirm') await confirm.click();
  await connect.waitFor();
  await screenshot(page, shots.t, 'signed-out-again');
  await page.goto(`${base}/tickets/${number}`);
  t.not(new URL(page.url()).origin, base, 'a signed-out visitor is sent to sign in');
  await page.close();
});

test.serial('Cancel at consent signs out and keeps nothing', async (t) => {
  const page = await newPage();
  await signIn(page, 'tst-agent');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.getByText('nothing was kept').waitFor();
  await screenshot(page, 'cancel', 'cancelled');
  t.is(await h.hg.store.models.User.countDocuments({ email: 'tst-agent@eucaim.example.org' }), 0);
  t.is(await h.hg.store.models.AddressBinding.countDocuments({ _id: 'tst-agent@eucaim.example.org' }), 0);
  await page.close();
});

test.serial('a person without the entitlement is told why and how to get access', async (t) => {
  const page = await newPage();
  await signIn(page, 'outsider');
  await page.getByRole('heading', { name: 'No access yet' }).waitFor();
  t.true((await page.textContent('main'))!.includes('mail is kept and will be answered'));
  await screenshot(page, 'outsider', 'no-access');
  t.deepEqual(await checkAccessibility(page), []);
  await page.goto(`${base}/tickets/new`);
  t.not(new URL(page.url()).pathname, '/tickets/new');
  await page.close();
});

test.serial('an unverified e-mail claim is not bound', async (t) => {
  const page = await newPage();
  await signIn(page, 'unverified');
  await page.getByRole('button', { name: 'YES, Continue' }).click();
  await page.goto(`${base}/account`);
  await screenshot(page, 'unverified', 'account');
  t.true((await page.textContent('main'))!.includes('No address linked yet'));
  t.deepEqual(await checkAccessibility(page), [], 'account page');
  await page.close();
});

test.serial('a new AUP version is asked again', async (t) => {
  const page = await newPage();
  await signIn(page, 'researcher');
  await page.getByRole('heading', { name: 'My tickets' }).waitFor();
  writeAup(2);
  try {
    await page.goto(`${base}/tickets/new`);
    await page.getByRole('heading', { name: 'Confirm your information' }).waitFor();
    t.true((await page.textContent('main'))!.includes('version 2'));
    await screenshot(page, 'aup', 'asked-again');
    await page.getByRole('button', { name: 'YES, Continue' }).click();
    await page.goto(`${base}/account`);
    t.deepEqual(await page.locator('table tbody tr td:first-child').allTextContents(), ['1', '2'], 'both consents are listed with their versions');
  } finally {
    writeAup(1);
  }
  await page.close();
});

test.serial('held mail from an unbound sender becomes a ticket once its sign-in link is used', async (t) => {
  await h.send({ from: 'fl-backup-personal@example.org', to: HELPDESK, subject: 'Held question', text: 'Please help, I have no account yet.', messageId: '<held-1@example.org>' });
  const notice = await h.relay.waitFor((m) => m.envelope.rcptTo.includes('fl-backup-personal@example.org'), 'the sign-in link');
  const link = /(http:\/\/\S+\/auth\/claim\?token=[A-Za-z0-9_-]+)/.exec(notice.parsed.text)![1]!;
  t.is((await h.tickets()).filter((x) => x.subject === 'Held question').length, 0, 'not ticketed while held');
  const page = await newPage();
  await page.goto(link);
  await page.getByRole('heading', { name: 'Choose your Identity Provider' }).waitFor();
  await page.getByRole('button', { name: 'LifeScienceHostel' }).first().click();
  await page.getByLabel('Username').fill('tst-agent');
  await page.getByLabel('Password').fill('tst-agent-pass');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const allow = page.getByRole('button', { name: 'Allow' });
  const yes = page.getByRole('button', { name: 'YES, Continue' });
  if ((await firstOf(page, { allow, yes })) === 'allow') await allow.click();
  await yes.click();
  // Nothing is linked without an explicit yes on helpgate's own page.
  await page.getByRole('heading', { name: 'Link this mail address?' }).waitFor();
  t.true((await page.textContent('main'))!.includes('fl-backup-personal@example.org'));
  t.is(await h.hg.store.models.AddressBinding.countDocuments({ _id: 'fl-backup-personal@example.org' }), 0);
  t.deepEqual(await checkAccessibility(page), [], 'link confirmation page');
  await page.getByRole('button', { name: /^Link / }).click();
  await page.getByText('is now linked to your identity').waitFor();
  await screenshot(page, 'held', 'released');
  const ticket = await until(async () => (await h.tickets()).find((x) => x.subject === 'Held question'), { what: 'the released ticket' });
  t.truthy(ticket.ownerSub);
  // The owner's ticket list is written right after the ticket: wait for it as a person would, reloading.
  await page.goto(`${base}/tickets`);
  await until(async () => {
    await page.reload();
    return (await page.textContent('main'))!.includes('Held question');
  }, { what: 'the released ticket in My tickets' });
  // The link works once: used again, it binds nothing and says so.
  await page.goto(link);
  const allowAgain = page.getByRole('button', { name: 'Allow' });
  const signInAgain = page.getByLabel('Username');
  const refused = page.getByRole('heading', { name: 'This link cannot be used' });
  for (;;) {
    const at = await firstOf(page, { allowAgain, signInAgain, refused });
    if (at === 'refused') break;
    if (at === 'allowAgain') {
      await allowAgain.click();
      await allowAgain.waitFor({ state: 'hidden' });
    } else {
      await signInAgain.fill('tst-agent');
      await page.getByLabel('Password').fill('tst-agent-pass');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await signInAgain.waitFor({ state: 'hidden' });
    }
  }
  await page.close();
});

test.serial('security: another person sees none of the first one’s tickets, forms need the CSRF token, a forged callback is refused', async (t) => {
  const owner = (await h.tickets()).find((x) => x.subject === 'Cannot upload DICOM series')!;
  const articles = await h.articles(owner.number);
  const page = await newPage();
  await signIn(page, 'unverified');
  await page.getByRole('heading', { name: 'My tickets' }).waitFor();
  for (const url of [
    `/tickets/${owner.number}`,
    `/tickets/${owner.number}/articles/${articles[0]!._id}/attachments/0`,
    `/tickets/999999`,
  ]) {
    const res = await page.goto(base + url);
    t.is(res!.status(), 404, url);
    t.false((await page.textContent('body'))!.includes('Cannot upload DICOM'), url);
  }
  for (const [url, form] of [
    [`/tickets/${owner.number}/reply`, { text: 'intrusion', submission: 'x'.repeat(24) }],
    [`/tickets/${owner.number}/state`, { action: 'solve' }],
  ] as const) {
    const token = await page.locator('input[name=_csrf]').first().getAttribute('value');
    const res = await page.request.post(base + url, { form: { ...form, _csrf: token! } });
    t.is(res.status(), 404, `${url} with a valid token but not the owner`);
    const noToken = await page.request.post(base + url, { form });
    t.is(noToken.status(), 403, `${url} without a CSRF token`);
  }
  t.false((await h.articles(owner.number)).some((a) => a.text.includes('intrusion')));
  // A token of another byte length (multi-byte characters) is refused like any wrong one, not a 500.
  const odd = await page.request.post(`${base}/tickets/${owner.number}/state`, { form: { action: 'solve', _csrf: 'é'.repeat(32) } });
  t.is(odd.status(), 403);
  // An upload from someone not signed in is refused before its body is read.
  const anonymous = await fetch(`${base}/tickets`, { method: 'POST', body: (() => { const f = new FormData(); f.append('attachments', new Blob(['x'.repeat(1000)]), 'a.bin'); return f; })() });
  t.is(anonymous.status, 403);
  // The provider's error text is shown only for a sign-in this browser started.
  await page.goto(`${base}/auth/callback?error=server_error&error_description=Call%20us%20at%20555`);
  t.false((await page.textContent('main'))!.includes('Call us'));
  const forged = await page.goto(`${base}/auth/callback?code=forged&state=forged`);
  t.is(forged!.status(), 400);
  t.true((await page.textContent('main'))!.includes('Sign-in'));
  await page.close();
});

test.serial('address confirmation: the link binds once; used again or expired it is refused', async (t) => {
  const page = await newPage();
  await signIn(page, 'researcher');
  await page.getByRole('heading', { name: 'My tickets' }).waitFor();
  await page.goto(`${base}/account`);
  await page.getByLabel('Add a mail address').fill('rita.second@example.org');
  await page.getByRole('button', { name: 'Send confirmation link' }).click();
  await page.getByText('We sent a confirmation link to rita.second@example.org').waitFor();
  const mail = await h.relay.waitFor((m) => m.envelope.rcptTo.includes('rita.second@example.org'), 'the confirmation link');
  const link = /(http:\/\/\S+\/account\/addresses\/confirm\?token=[A-Za-z0-9_-]+)/.exec(mail.parsed.text)![1]!;
  await page.goto(link);
  await page.getByText('rita.second@example.org is now linked to your identity.').waitFor();
  await screenshot(page, 'confirm', 'bound');
  const again = await page.goto(link);
  t.is(again!.status(), 410);
  t.true((await page.textContent('main'))!.includes('already used'));
  t.deepEqual(await checkAccessibility(page), [], 'error page');

  // A second address whose link has expired.
  await page.goto(`${base}/account`);
  await page.getByLabel('Add a mail address').fill('rita.third@example.org');
  await page.getByRole('button', { name: 'Send confirmation link' }).click();
  const third = await h.relay.waitFor((m) => m.envelope.rcptTo.includes('rita.third@example.org'), 'the second confirmation link');
  const thirdLink = /(http:\/\/\S+\/account\/addresses\/confirm\?token=[A-Za-z0-9_-]+)/.exec(third.parsed.text)![1]!;
  await h.hg.store.models.MailToken.updateMany({ address: 'rita.third@example.org' }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
  const expired = await page.goto(thirdLink);
  t.is(expired!.status(), 410);
  t.true((await page.textContent('main'))!.includes('expired'));
  await page.goto(`${base}/account`);
  const addresses = await page.locator('ul.addresses').textContent();
  t.true(addresses!.includes('rita.second@example.org'));
  t.false(addresses!.includes('rita.third@example.org'));
  await page.close();
});

test.serial('sign-in: a forged state, a replayed callback and a wrong nonce are refused', async (t) => {
  const callbacks: string[] = [];
  const page = await newPage();
  page.on('request', (r) => {
    if (r.url().startsWith(`${base}/auth/callback`)) callbacks.push(r.url());
  });
  await signIn(page, 'fl-agent');
  await page.getByRole('button', { name: 'YES, Continue' }).click();
  await page.getByRole('heading', { name: 'Queue of First Line Support' }).waitFor();
  // The same callback again (code and state already used): refused, never a stack trace.
  const replay = await page.goto(callbacks[0]!);
  t.is(replay!.status(), 400);
  t.true((await page.textContent('main'))!.includes('Sign-in expired'));
  t.false((await page.content()).includes('    at '), 'no stack trace');

  // A sign-in in flight, answered with a state that is not the one sent.
  const other = await newPage();
  await other.goto(`${base}/auth/login`);
  await other.getByRole('heading', { name: 'Choose your Identity Provider' }).waitFor();
  const forged = await other.goto(`${base}/auth/callback?code=abc&state=forged-state`);
  t.is(forged!.status(), 400);
  t.true((await other.textContent('main'))!.includes('Sign-in failed'));

  // A sign-in whose nonce in the session does not match the one in the id token.
  await other.goto(`${base}/auth/login`);
  await other.getByRole('heading', { name: 'Choose your Identity Provider' }).waitFor();
  const cookie = (await other.context().cookies(base)).find((c) => c.name === 'hg_session')!.value;
  const sessionId = createHash('sha256').update(cookie).digest('hex');
  await h.hg.store.models.Session.updateOne({ _id: sessionId }, { $set: { 'data.login.nonce': 'not-the-nonce' } });
  await other.getByRole('button', { name: 'LifeScienceHostel' }).first().click();
  await other.getByLabel('Username').fill('fl-agent');
  await other.getByLabel('Password').fill('fl-agent-pass');
  await other.getByRole('button', { name: 'Sign in' }).click();
  const allow = other.getByRole('button', { name: 'Allow' });
  if ((await firstOf(other, { allow, back: (u) => u.origin === base })) === 'allow') await allow.click();
  await other.waitForURL((u) => u.origin === base);
  t.true((await other.textContent('main'))!.includes('Sign-in failed'));
  await screenshot(other, 'refused', 'wrong-nonce');
  // Not signed in: the portal sends the visitor to sign in (the provider's own session would then
  // sign them in again, which is why this looks at the portal's answer, not where it leads).
  const account = await other.request.get(`${base}/account`, { maxRedirects: 0 });
  t.is(account.status(), 302);
  t.regex(account.headers().location ?? '', /^\/auth\/login\?return=/);
  await other.close();
  await page.close();
});
