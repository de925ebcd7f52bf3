import test from 'ava';
import type { Arrival } from '../src/mail/auth/verify.ts';
import { readMail, splitCommandLines, type ReadOptions } from '../src/mail/parse/read.ts';
import { fixtureResolver } from './helpers/dns-fixture.ts';
import { fixture } from './helpers/mail-flow.ts';

// readMail: one reading of a received mail, with everything ingest decides on. DNS comes from a
// table (no network).

const smtp = (mailFrom: string | null): Arrival => ({ mailFrom, clientIp: '192.0.2.10', helo: 'mx.uni.example' });

function options(envelope: Arrival, dns: Record<string, string | string[] | 'timeout'> = {}, trustedAuthservIds: string[] = []): ReadOptions & { resolver: ReturnType<typeof fixtureResolver> } {
  const resolver = fixtureResolver(dns);
  return {
    ticketPrefix: 'CIE',
    ownAddress: 'help@helpdesk.localhost',
    envelope,
    verify: { resolver, mta: 'helpdesk.localhost', trustedAuthservIds, budgetMs: 5000 },
    resolver,
  };
}

const crlf = (lines: string[]) => Buffer.from(lines.join('\r\n'));

test('a reply: its tag, its cleaned subject, its sender and the DMARC verdict of its domain', async (t) => {
  const opts = options(smtp('ada@uni.example'), { '_dmarc.uni.example': 'v=DMARC1; p=reject' });
  const r = await readMail(fixture('reply-with-cc-html-and-attachment.eml'), opts);
  t.deepEqual(r.tags, [100001]);
  t.is(r.subject, 'Upload fällt aus');
  t.is(r.message.subject, 'Re: [CIE#100001] Upload fällt aus', 'the message keeps its subject as written');
  t.deepEqual(r.sender, { address: 'ada@uni.example', name: 'Ada Researcher' });
  t.is(r.newText, 'The upload still fails; the log is attached.\nGrüße, Ada');
  t.deepEqual(r.commands, { lines: [], rest: r.newText });
  t.is(r.automated, null);
  t.is(r.report, null);
  t.is(r.verifyError, null);
  t.is(r.verdict.headerFrom, 'ada@uni.example');
  t.is(r.verdict.dmarc.result, 'fail', 'unsigned mail from a domain with p=reject');
  t.is(r.verdict.dmarc.policy, 'reject');
  t.is(r.verdict.alignedDomain, null);
  t.true(opts.resolver.asked.includes('TXT _dmarc.uni.example'));
});

test("an agent's reply: the quote trimmed, the command lines split off the new text, a trusted hop's DMARC pass", async (t) => {
  const raw = crlf([
    'Authentication-Results: mx.helpdesk.localhost; dmarc=pass header.from=uni.example',
    'From: Grace Agent <grace@uni.example>',
    'To: help+100001-abc@helpdesk.localhost',
    'Subject: RE: Re: [CIE#100001] Viewer shows a blank series',
    'Message-ID: <agent-1@uni.example>',
    'In-Reply-To: <note-1@helpdesk.localhost>',
    'Content-Type: text/plain; charset=utf-8',
    '',
    '',
    '/take',
    '',
    '/priority urgent',
    'I will look at it today.',
    '',
    'On Mon, 2 Jun 2025 at 10:00, Helpdesk <help@helpdesk.localhost> wrote:',
    '> /solve',
    '> A new ticket.',
    '',
  ]);
  const opts = options({ mailFrom: 'grace@uni.example', clientIp: null, helo: null }, {}, ['mx.helpdesk.localhost']);
  const r = await readMail(raw, opts);
  t.is(r.newText, '/take\n\n/priority urgent\nI will look at it today.');
  t.deepEqual(r.commands, { lines: ['/take', '/priority urgent'], rest: 'I will look at it today.' }, 'the quoted "/solve" is no command');
  t.deepEqual(r.tags, [100001]);
  t.is(r.subject, 'Viewer shows a blank series');
  t.is(r.automated, null);
  t.is(r.verdict.hop?.authservId, 'mx.helpdesk.localhost');
  t.is(r.verdict.alignedDomain, 'uni.example');
  t.is(r.verdict.headerFrom, 'grace@uni.example');
});

test('command lines: blank lines between them, a command after the text is text, at most twenty-one are read', (t) => {
  t.deepEqual(splitCommandLines('\r\n/take\r\n\r\n/note\r\nHello\r\n/close\r\n'), { lines: ['/take', '/note'], rest: 'Hello\n/close' });
  t.deepEqual(splitCommandLines('Hello\n/take'), { lines: [], rest: 'Hello\n/take' });
  const many = Array.from({ length: 25 }, (_, i) => `/take ${i}`);
  const split = splitCommandLines(many.join('\n'));
  t.is(split.lines.length, 21);
  t.is(split.rest, many.slice(20).join('\n'), 'as before: the rest starts at the line past the limit');
});

test('an auto-reply: the automation reason, no tag', async (t) => {
  const r = await readMail(fixture('auto-submitted-auto-replied.eml'), options(smtp('vince@uni-loop.example')));
  t.is(r.automated, 'Auto-Submitted: auto-replied');
  t.deepEqual(r.tags, []);
  t.is(r.subject, 'Automatic reply: Out of office', 'only reply and forward prefixes go');
  t.is(r.newText, 'I am out of the office until Monday.');
  t.is(r.report, null);
  t.is(r.verdict.dmarc.result, 'none', 'the domain publishes no DMARC record');
});

test('a delivery status notification: its report, the null reverse-path, the envelope sender when From: is missing', async (t) => {
  const raw = Buffer.from(
    fixture('dsn-postfix-hard-bounce-verp.eml')
      .toString('utf8')
      .replaceAll('{{RETURN_PATH}}', 'help+b-1-x@helpdesk.localhost')
      .replaceAll('{{RECIPIENT}}', 'nobody@remote.example')
      .replaceAll('{{MESSAGE_ID}}', '<out-1@helpdesk.localhost>'),
  );
  const r = await readMail(raw, options(smtp('')));
  t.is(r.automated, 'null reverse-path (bounce)');
  t.is(r.report?.originalMessageId, '<out-1@helpdesk.localhost>');
  t.is(r.report?.reportingMta, 'mx.relay.example');
  t.deepEqual(r.report?.recipients.map((x) => [x.address, x.action, x.status]), [['nobody@remote.example', 'failed', '5.1.1']]);
  t.is(r.sender?.address, 'mailer-daemon@mx.relay.example');

  const noFrom = crlf(['To: help@helpdesk.localhost', 'Subject: hi', '', 'Hello', '']);
  const anonymous = await readMail(noFrom, options(smtp('Someone@Uni.Example')));
  t.deepEqual(anonymous.sender, { address: 'someone@uni.example', name: '' });
  t.is((await readMail(noFrom, options({ mailFrom: null, clientIp: null, helo: null }))).sender, null);
});
