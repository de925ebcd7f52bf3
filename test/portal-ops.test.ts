import test from 'ava';
import type { Page } from 'playwright-core';
import { enqueueWork } from '../src/db/coordination/index.ts';
import { sha256 } from '../src/db/blobs.ts';
import { freePort } from '../src/db/embedded.ts';
import type { InboxItem } from '../src/db/models/inbox.ts';
import type { OutboxMail } from '../src/db/models/outbox.ts';
import type { Ticket } from '../src/db/models/ticket.ts';
import { startBrowser, screenshot, checkAccessibility, type TestBrowser, signInWithDevAai } from './helpers/browser.ts';
import { HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { until } from './helpers/wait.ts';

// A helpdesk with a relay (the capture SMTP server), mail from unknown senders held, and one
// ingest attempt before an item is quarantined.
let h: TestHelpgate;
let browser: TestBrowser;
let base: string;
let fl: Page;
/** Signed in once, so that the researcher's address is bound and their mail opens tickets. */
let researcher: Page;
const RESEARCHER = 'researcher@university.example';

test.before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  h = await startTestHelpgate(null, { portal: true, env: { HTTP_PORT: String(port), PUBLIC_URL: base, UNBOUND_SENDERS: 'hold', INGEST_MAX_ATTEMPTS: '1' } });
  browser = await startBrowser();
  fl = await signedIn('fl-agent');
  researcher = await signedIn('researcher');
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

/** The rows of the page's first table.list as cell texts (white space collapsed, the stacked-row labels not included). */
async function rowOf(page: Page, text: string): Promise<string[]> {
  const row = page.locator('table.list tbody tr', { hasText: text }).first();
  return (await row.locator('td').allTextContents()).map((c) => c.replace(/\s+/g, ' ').trim());
}

/** The audit entries shown on the page, as [who, action, mail, outcome]. */
async function auditRows(page: Page): Promise<string[][]> {
  const rows: string[][] = [];
  for (const row of await page.locator('table.audit-list tbody tr').all()) rows.push((await row.locator('td').allTextContents()).slice(1).map((c) => c.replace(/\s+/g, ' ').trim()));
  return rows;
}

function inboxItem(filter: Record<string, unknown>, what: string): Promise<InboxItem> {
  return until(() => h.hg.store.models.Inbox.findOne(filter, { raw: 0 }).lean<InboxItem>(), { what, timeoutMs: 60_000 });
}

test.serial('held mail: First Line sees address, subject, age and expiry; releases one as a ticket and discards another, both audited', async (t) => {
  await h.send({ from: 'hana@lab-held.example', to: HELPDESK, subject: 'Please look at my upload', text: 'The upload of study 7 fails.' });
  await h.send({ from: 'offers@spam-held.example', to: HELPDESK, subject: 'Cheap offer', text: 'Buy now.' });
  await inboxItem({ heldAddress: 'hana@lab-held.example', state: 'held' }, 'the first mail held');
  await inboxItem({ heldAddress: 'offers@spam-held.example', state: 'held' }, 'the second mail held');

  await fl.getByRole('link', { name: 'Held mail' }).click();
  await fl.getByRole('heading', { name: 'Held mail', level: 1 }).waitFor();
  const [from, subject, age, expires] = await rowOf(fl, 'hana@lab-held.example');
  t.is(from, 'hana@lab-held.example');
  t.is(subject, 'Please look at my upload');
  t.regex(age!, /^\d+ minutes?$/);
  t.regex(expires!, new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC \\(in (${h.config.holdDays}|${h.config.holdDays - 1}) days\\)$`), 'HOLD_DAYS after it arrived');
  await screenshot(fl, import.meta.url, 'held mail');
  t.deepEqual(await checkAccessibility(fl), [], 'held mail page');

  await fl.locator('tr', { hasText: 'hana@lab-held.example' }).getByRole('button', { name: 'Release as ticket' }).click();
  await fl.locator('.flash.success', { hasText: 'The mail from hana@lab-held.example is being opened as a ticket.' }).waitFor();
  const ticket = await until(() => h.hg.store.models.Ticket.findOne({ subject: 'Please look at my upload' }).lean<Ticket>(), { what: 'the ticket of the released mail', timeoutMs: 60_000 });
  t.is(ticket.requester.address, 'hana@lab-held.example');
  t.is(ticket.ownerSub, null, 'nobody signed in for it');
  const ack = await h.relay.waitFor((m) => m.envelope.rcptTo.includes('hana@lab-held.example') && m.header('auto-submitted') === 'auto-replied' && m.parsed.subject.includes(`#${ticket.number}]`), 'the acknowledgement of the released mail', 60_000);
  t.is(ack.parsed.subject, `[CIE#${ticket.number}] Please look at my upload`);

  await fl.locator('tr', { hasText: 'offers@spam-held.example' }).getByRole('button', { name: 'Discard' }).click();
  await fl.locator('.flash.success', { hasText: 'The mail from offers@spam-held.example was discarded.' }).waitFor();
  const discarded = await inboxItem({ heldAddress: 'offers@spam-held.example' }, 'the discarded mail');
  t.is(discarded.state, 'ignored');
  t.regex(discarded.note ?? '', /discarded by fl-agent@eucaim\.example\.org/);
  t.is(await fl.locator('table.held-list tr', { hasText: 'offers@spam-held.example' }).count(), 0, 'no longer listed');
  t.is(await fl.locator('table.held-list tr', { hasText: 'hana@lab-held.example' }).count(), 0, 'no longer listed');

  t.deepEqual(await auditRows(fl), [
    ['Frida Firstline', 'Discarded', 'offers@spam-held.example', 'done'],
    ['Frida Firstline', 'Released as a ticket', 'hana@lab-held.example', 'done'],
  ]);
  const events = await h.hg.store.models.OpsEvent.find({}).sort({ at: 1 }).lean();
  t.like(events[0], { action: 'held.release', channel: 'web', outcome: 'applied', actor: { address: 'fl-agent@eucaim.example.org', name: 'Frida Firstline' }, target: { kind: 'inbox' } });
});

test.serial('a quarantined inbox item is shown with its error; Retry from the web processes it', async (t) => {
  // A stored message whose raw bytes are missing fails on its one attempt and is quarantined.
  const raw = Buffer.from(
    [
      `From: Rita Researcher <${RESEARCHER}>`,
      `To: ${HELPDESK}`,
      'Subject: Stuck in quarantine',
      'Date: Tue, 03 Mar 2026 11:00:00 +0100',
      '<quarantined.rita@university.example>'.replace(/^/, 'Message-ID: '),
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'This message could not be processed at first.',
      '',
    ].join('\r\n'),
  );
  const now = new Date();
  const { Inbox, InboxQueue } = h.hg.store.models;
  const item = await Inbox.create({ source: 'pipe', envelope: { mailFrom: RESEARCHER, rcptTo: [HELPDESK] }, rawSha256: sha256(raw), raw: null, size: raw.length, receivedAt: now, availableAt: now });
  await enqueueWork(InboxQueue, [item._id], now);
  const quarantined = await inboxItem({ _id: item._id, state: 'quarantined' }, 'the item quarantined');
  t.regex(quarantined.lastError ?? '', /raw message .* is missing/);

  await fl.getByRole('link', { name: 'Quarantine' }).click();
  await fl.getByRole('heading', { name: 'Quarantine', level: 1 }).waitFor();
  const [, from, error, attempts] = await rowOf(fl, RESEARCHER);
  t.is(from, `${RESEARCHER} to ${HELPDESK}`);
  t.regex(error!, /raw message [0-9a-f]{64} is missing/);
  t.is(attempts, '1');
  await screenshot(fl, import.meta.url, 'quarantine');
  t.deepEqual(await checkAccessibility(fl), [], 'quarantine page');

  // The cause is fixed (the bytes are there again); then Retry.
  await h.hg.store.blobs.put(raw);
  await fl.locator('tr', { hasText: RESEARCHER }).getByRole('button', { name: 'Retry' }).click();
  await fl.locator('.flash.success', { hasText: `The message from ${RESEARCHER} is being processed again.` }).waitFor();
  const done = await inboxItem({ _id: item._id, state: 'done' }, 'the retried item processed');
  t.truthy(done.ticketNumber);
  await h.relay.waitFor((m) => m.envelope.rcptTo.includes(RESEARCHER) && m.parsed.subject === `[CIE#${done.ticketNumber}] Stuck in quarantine`, 'the acknowledgement of the retried mail', 60_000);
  t.deepEqual(await auditRows(fl), [['Frida Firstline', 'Retried', `from ${RESEARCHER}`, 'done']]);
  await fl.reload();
  t.true(await fl.getByText('No message is quarantined.').isVisible());
});

test.serial('failed outbound mail is shown with the relay\'s answer; one is sent again with Retry, another cancelled', async (t) => {
  const retried = 'retry-me@uni-fail.example';
  const cancelled = 'cancel-me@uni-fail.example';
  let accepting = false;
  h.relay.verdict = ({ rcptTo }) => (rcptTo.includes(cancelled) || (rcptTo.includes(retried) && !accepting) ? { code: 550, message: '5.1.1 Mailbox unavailable' } : null);
  // Both are held and answered with a sign-in link, which the relay refuses.
  await h.send({ from: retried, to: HELPDESK, subject: 'Will the answer reach me?', text: 'Hello.' });
  await h.send({ from: cancelled, to: HELPDESK, subject: 'Nobody reads this mailbox', text: 'Hello.' });
  const failed = (to: string) => until(() => h.hg.store.models.Outbox.findOne({ to, state: 'failed' }, { raw: 0 }).lean<OutboxMail>(), { what: `the mail to ${to} failed`, timeoutMs: 60_000 });
  const first = await failed(retried);
  await failed(cancelled);

  await fl.getByRole('link', { name: 'Failed mail' }).click();
  await fl.getByRole('heading', { name: 'Failed mail', level: 1 }).waitFor();
  const [to, subject, answer] = await rowOf(fl, retried);
  t.is(to, retried);
  t.regex(subject!, /^Sign in to open your ticket: Will the answer reach me\? sign-in link \(held mail\)$/);
  t.regex(answer!, /550 5\.1\.1 Mailbox unavailable/);
  await screenshot(fl, import.meta.url, 'failed mail');
  t.deepEqual(await checkAccessibility(fl), [], 'failed mail page');

  accepting = true;
  await fl.locator('tr', { hasText: retried }).getByRole('button', { name: 'Retry' }).click();
  await fl.locator('.flash.success', { hasText: `is being sent again` }).waitFor();
  const delivered = await h.relay.waitFor((m) => m.envelope.rcptTo.includes(retried), 'the retried mail at the relay', 60_000);
  t.is(delivered.parsed.messageId, first.messageId, 'the same message, sent again');
  await until(() => h.hg.store.models.Outbox.exists({ _id: first._id, state: 'sent' }), { what: 'the retried mail settled as sent' });

  await fl.locator('tr', { hasText: cancelled }).getByRole('button', { name: 'Cancel' }).click();
  await fl.locator('.flash.success', { hasText: 'was cancelled: it will not be sent' }).waitFor();
  t.is((await h.hg.store.models.Outbox.findOne({ to: cancelled }, { state: 1 }).lean<OutboxMail>())!.state, 'cancelled');
  t.is(await fl.locator('table.failed-list').count(), 0, 'nothing failed is left');
  t.true(await fl.getByText('No outbound mail has failed.').isVisible());
  t.is(h.relay.to(cancelled).length, 0);

  const audit = await auditRows(fl);
  t.deepEqual(audit.map(([who, action, , outcome]) => [who, action, outcome]), [
    ['Frida Firstline', 'Cancelled', 'done'],
    ['Frida Firstline', 'Sent again', 'done'],
  ]);
  t.true(audit[0]![2]!.includes(cancelled));
  h.relay.verdict = () => null;
});

test.serial('an action on mail that is no longer in its state is refused with a reason, and audited as refused', async (t) => {
  const item = await inboxItem({ heldAddress: 'offers@spam-held.example' }, 'the discarded mail');
  const csrf = (await fl.locator('input[name="_csrf"]').first().inputValue())!;
  const response = await fl.request.post(`${base}/ops/held/${item._id}/release`, { form: { _csrf: csrf } });
  t.is(response.status(), 409);
  const page = await response.text();
  t.regex(page, /<div class="flash error" role="alert"><p>Not done: it is no longer held/);
  t.like(await h.hg.store.models.OpsEvent.findOne({ action: 'held.release', outcome: 'refused' }).lean(), { reason: 'it is no longer held (released, discarded or expired meanwhile)' });
  t.is((await h.hg.store.models.Inbox.findById(item._id, { state: 1 }).lean<InboxItem>())!.state, 'ignored');
});

test.serial('agents of other units and requesters get "not found" on the operations pages and their actions; no Mail page with a relay', async (t) => {
  const tst = await signedIn('tst-agent');
  for (const name of ['Held mail', 'Quarantine', 'Failed mail', 'Mail']) t.is(await tst.getByRole('link', { name, exact: true }).count(), 0, `no ${name} in the side bar`);
  const csrf = (await tst.locator('input[name="_csrf"]').first().inputValue())!;
  for (const path of ['/ops', '/ops/held', '/ops/quarantine', '/ops/failed-mail', '/mail']) {
    const response = await tst.goto(`${base}${path}`);
    t.is(response!.status(), 404, path);
    t.true(await tst.getByRole('heading', { name: 'Page not found' }).isVisible(), path);
  }
  const anyId = '0'.repeat(24);
  for (const path of [`/ops/held/${anyId}/release`, `/ops/held/${anyId}/discard`, `/ops/quarantine/${anyId}/retry`, `/ops/failed-mail/${anyId}/retry`, `/ops/failed-mail/${anyId}/cancel`]) {
    t.is((await tst.request.post(`${base}${path}`, { form: { _csrf: csrf } })).status(), 404, path);
  }
  t.is(await h.hg.store.models.OpsEvent.countDocuments({ 'actor.address': 'tst-agent@eucaim.example.org' }), 0, 'nothing was done, nothing recorded');

  t.is((await researcher.goto(`${base}/ops/held`))!.status(), 404);
  // With a relay configured nothing is captured: no Mail page, for First Line either.
  t.is((await fl.goto(`${base}/mail`))!.status(), 404);
  t.is(await fl.getByRole('link', { name: 'Mail', exact: true }).count(), 0);
});
