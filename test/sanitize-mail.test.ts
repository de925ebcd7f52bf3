import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { projectRoot } from '../src/config/load.ts';
import { BLOCKED_IMAGE_ATTRIBUTE, sanitizeMailHtml } from '../src/http/render/sanitize-mail.ts';
import { checkAccessibility, screenshot, startBrowser, type TestBrowser } from './helpers/browser.ts';
import { PayloadProbe, PORT_PLACEHOLDER, type Observation } from './helpers/payload-probe.ts';

const CORPUS_DIR = path.join(projectRoot, 'test/fixtures/hostile-html');
const BLOCKED = { allowRemoteImages: false } as const;
const SAFE_REL = 'noopener noreferrer nofollow';

type Trigger = 'load' | 'click' | 'none';
interface Payload {
  name: string;
  trigger: Trigger;
  html: string;
}

const corpus: Payload[] = readdirSync(CORPUS_DIR)
  .filter((f) => f.endsWith('.html'))
  .sort()
  .map((file) => {
    const html = readFileSync(path.join(CORPUS_DIR, file), 'utf8');
    const trigger = /^<!-- trigger: (load|click|none)\. /.exec(html)?.[1] as Trigger | undefined;
    if (!trigger) throw new Error(`${file}: first line must be <!-- trigger: load|click|none. … -->`);
    return { name: file.slice(0, -'.html'.length), trigger, html };
  });

interface Tag {
  name: string;
  attrs: Record<string, string>;
}

/**
 * The tags of sanitised output. sanitize-html writes every attribute value in double quotes
 * with `"`, `<` and `>` escaped, so in its output a tag always ends at the first `>` and this
 * simple scan is exact (it would not be for arbitrary HTML).
 */
function tagsOf(html: string): Tag[] {
  const decode = (v: string): string =>
    v.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n))).replace(/&amp;/g, '&');
  return [...html.matchAll(/<([a-zA-Z][^\s/>]*)([^>]*)>/g)].map(([, name, rest]) => ({
    name: name.toLowerCase(),
    attrs: Object.fromEntries([...rest.matchAll(/([^\s="/]+)(?:="([^"]*)")?/g)].map(([, a, v]) => [a.toLowerCase(), decode(v ?? '')])),
  }));
}

const tagsNamed = (html: string, name: string): Record<string, string>[] => tagsOf(html).filter((t) => t.name === name).map((t) => t.attrs);

test('corpus: enough payloads, each labelled, each beacon named after its own file', (t) => {
  t.true(corpus.length >= 35, `${corpus.length} payloads`);
  for (const p of corpus) {
    for (const [, beacon] of p.html.matchAll(/\/beacon\/([^/"'\s)]+)/g)) t.is(beacon, p.name, `${p.name} calls the beacon of ${beacon}`);
    for (const [url] of p.html.matchAll(/\/\/127\.0\.0\.1:[^/]*\//g)) t.is(url, `//127.0.0.1:${PORT_PLACEHOLDER}/`, `${p.name}: beacon port placeholder`);
  }
});

test('links keep only http, https and mailto, and open in a new tab without opener or referrer', (t) => {
  const refused = [
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    '&#106;avascript:alert(1)',
    'java\tscript:alert(1)',
    ' \x01 javascript:alert(1)',
    'vbscript:msgbox(1)',
    'data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;',
    'file:///etc/passwd',
    '/tickets/1/close',
    '//evil.example/',
    'www.example.org',
  ];
  const mail = [
    '<a href="https://example.org/x?a=1&amp;b=2" target="_self" rel="opener">web</a>',
    '<a href="mailto:help@example.org?subject=Hi">mail</a>',
    ...refused.map((href, i) => `<a href="${href}" onclick="alert(1)">${i}</a>`),
  ].join('\n');
  const links = tagsNamed(sanitizeMailHtml(mail, BLOCKED).html, 'a');
  t.deepEqual(
    links.map((a) => a.href),
    ['https://example.org/x?a=1&b=2', 'mailto:help@example.org?subject=Hi', ...refused.map(() => undefined)],
  );
  for (const a of links) t.deepEqual(a, { ...(a.href ? { href: a.href } : {}), rel: SAFE_REL, target: '_blank' });
});

test('cid images point at the attachment; unknown ones keep only their alt text', (t) => {
  const asked: string[] = [];
  const mail = '<img src="cid:logo%40example.org" alt="Logo"><img src="CID:<chart@x>" alt="Chart"><img src="cid:missing@x" alt="Gone">';
  const out = sanitizeMailHtml(mail, {
    allowRemoteImages: false,
    cidUrl: (id) => {
      asked.push(id);
      return id === 'missing@x' ? null : `/attachments/${encodeURIComponent(id)}`;
    },
  });
  t.deepEqual(asked, ['logo@example.org', 'chart@x', 'missing@x']);
  t.deepEqual(tagsNamed(out.html, 'img'), [
    { alt: 'Logo', src: '/attachments/logo%40example.org' },
    { alt: 'Chart', src: '/attachments/chart%40x' },
    { alt: 'Gone' },
  ]);
  t.is(out.blockedRemoteImages, 0);
  t.deepEqual(tagsNamed(sanitizeMailHtml(mail, BLOCKED).html, 'img'), [{ alt: 'Logo' }, { alt: 'Chart' }, { alt: 'Gone' }], 'no cidUrl: no source');
});

test('remote images are not loaded until the reader asks, and are counted', (t) => {
  const mail = [
    '<p>Hi</p><img src="https://tracker.example/open.gif?u=1" width="1" height="1">',
    '<img src="http://cdn.example/logo.png" alt="Logo" srcset="http://cdn.example/logo2.png 2x" referrerpolicy="unsafe-url">',
    '<img src="data:image/svg+xml;base64,PHN2Zy8+" alt="inline">',
    '<img src="logo.png" alt="relative">',
    `<img alt="forged" ${BLOCKED_IMAGE_ATTRIBUTE}="remote">`,
  ].join('');

  const blocked = sanitizeMailHtml(mail, BLOCKED);
  t.is(blocked.blockedRemoteImages, 2);
  t.deepEqual(tagsNamed(blocked.html, 'img'), [
    { width: '1', height: '1', alt: '', [BLOCKED_IMAGE_ATTRIBUTE]: 'remote' },
    { alt: 'Logo', [BLOCKED_IMAGE_ATTRIBUTE]: 'remote' },
    { alt: 'inline' },
    { alt: 'relative' },
    { alt: 'forged' },
  ]);
  t.notRegex(blocked.html, /tracker\.example|cdn\.example/, 'not even kept aside for a script to restore');

  const shown = sanitizeMailHtml(mail, { allowRemoteImages: true });
  t.is(shown.blockedRemoteImages, 0);
  t.deepEqual(tagsNamed(shown.html, 'img'), [
    { width: '1', height: '1', alt: '', src: 'https://tracker.example/open.gif?u=1', referrerpolicy: 'no-referrer' },
    { alt: 'Logo', src: 'http://cdn.example/logo.png', referrerpolicy: 'no-referrer' },
    { alt: 'inline' },
    { alt: 'relative' },
    { alt: 'forged' },
  ]);
});

test('inline style keeps text colours and alignment, nothing that fetches or moves things', (t) => {
  const mail = [
    '<p style="color: #c00; text-align: center; background: url(https://t.example/b.gif); position: fixed; top: 0">a</p>',
    '<span style="background-color: rgb(255, 255, 0); font-weight: bold; width: expression(alert(1))">b</span>',
    '<div style="color: red; background-image: u\\72l(https://t.example/c.gif)">c</div>',
    '<b style="color: \\72 ed; behavior: url(x.htc)">d</b>',
  ].join('');
  t.deepEqual(
    tagsOf(sanitizeMailHtml(mail, BLOCKED).html).map((tag) => tag.attrs.style),
    ['color:#c00;text-align:center', 'background-color:rgb(255, 255, 0);font-weight:bold', 'color:red', undefined],
  );
});

test('code, style sheets and hidden containers go with their content; other wrappers keep their text', (t) => {
  const mail =
    '<html><head><title>Offer</title><style>p { color: red }</style><meta charset="utf-8"></head><body>' +
    '<script>alert("s")</script><p>Visible</p><svg><text>svg text</text></svg><noscript>ns</noscript>' +
    '<form action="https://evil.example/"><label>Name</label><input name="x"></form><textarea>ta</textarea>' +
    '<select><option>o</option></select><iframe>if</iframe><object>obj</object><template>tpl</template></body></html>';
  t.is(sanitizeMailHtml(mail, BLOCKED).html, '<p>Visible</p>Name');
});

test('ids, names and classes go: a mail cannot define page globals or borrow portal styles', (t) => {
  const out = sanitizeMailHtml('<a id="csrf" name="config" class="btn btn-danger" href="https://example.org/">x</a><div id="app" class="notice">y</div>', BLOCKED);
  t.is(out.html, `<a href="https://example.org/" rel="${SAFE_REL}" target="_blank">x</a><div>y</div>`);
});

test('every corpus payload comes out without handlers, scripts, sources or dangerous URLs', (t) => {
  for (const p of corpus) {
    const { html } = sanitizeMailHtml(p.html, BLOCKED);
    t.notRegex(html, /<script/i, p.name);
    for (const tag of tagsOf(html)) {
      const where = `${p.name}: <${tag.name}>`;
      t.false(['script', 'style', 'iframe', 'object', 'embed', 'svg', 'math', 'form', 'input', 'button', 'meta', 'link', 'base', 'template'].includes(tag.name), where);
      for (const [name, value] of Object.entries(tag.attrs)) {
        t.notRegex(name, /^on/i, where);
        t.false(['src', 'srcset', 'background', 'poster', 'formaction', 'action', 'xlink:href', 'lowsrc', 'dynsrc', 'id', 'name'].includes(name), `${where} ${name}`);
        // What a URL parser would see: whitespace and control characters are ignored in schemes.
        t.notRegex(value.replace(/[\s\x00-\x1f]/g, ''), /(?:javascript|vbscript|data):/i, `${where} ${name}="${value}"`);
      }
      if (tag.name === 'a') t.is(tag.attrs.rel, SAFE_REL, where);
    }
  }
});

// The browser is started once, by the first test that needs it.
let chromium: Promise<TestBrowser> | null = null;
const browser = (): Promise<TestBrowser> => (chromium ??= startBrowser());
test.after.always(async () => {
  if (chromium) await (await chromium).close();
});

async function observeCorpus(probe: PayloadProbe, render: (html: string) => string): Promise<Observation[]> {
  return probe.observeAll(corpus.map((p) => ({ name: p.name, body: render(probe.withPort(p.html)) })));
}

const acted = (o: Observation): boolean => o.flag !== null || o.dialogs.length > 0 || o.beaconHits.length > 0;

test('Chromium: no payload runs, fetches or navigates once sanitised (page without CSP)', async (t) => {
  const probe = await new PayloadProbe(await browser()).listen();
  t.teardown(() => probe.close());
  const observations = await observeCorpus(probe, (html) => sanitizeMailHtml(html, BLOCKED).html);
  t.is(observations.length, corpus.length);
  const failures = observations.filter((o) => acted(o) || o.requests.length > 0 || o.navigated || o.domProblems.length > 0);
  t.deepEqual(failures, []);
  t.deepEqual(probe.beaconHits, []);
});

test('Chromium control: shown unsanitised, each payload does what its label says', async (t) => {
  const probe = await new PayloadProbe(await browser()).listen();
  t.teardown(() => probe.close());
  const observations = await observeCorpus(probe, (html) => html);
  const mislabelled = corpus
    .map((p, i) => ({ p, ran: acted(observations[i]) }))
    .filter(({ p, ran }) => ran !== (p.trigger !== 'none'))
    .map(({ p, ran }) => `${p.name}: labelled ${p.trigger}, but ${ran ? 'it ran' : 'nothing happened'}`);
  t.deepEqual(mislabelled, []);
  // Each way of noticing a payload has noticed one, so none of them is blind.
  t.true(observations.some((o) => o.flag === '1'), 'a script set the flag');
  t.true(observations.some((o) => o.dialogs.length > 0), 'a dialog was seen');
  t.true(observations.some((o) => o.beaconHits.length > 0), 'the beacon was reached');
  t.true(observations.some((o) => o.domProblems.length > 0), 'the DOM audit found something');
  t.true(corpus.filter((p) => p.trigger !== 'none').length >= 3);
});

test('Chromium: remote images load once the reader asks for them', async (t) => {
  const probe = await new PayloadProbe(await browser()).listen();
  t.teardown(() => probe.close());
  const beacon = corpus.find((p) => p.name === 'remote-image-beacon')!;
  const body = sanitizeMailHtml(probe.withPort(beacon.html), { allowRemoteImages: true }).html;
  const [seen] = await probe.observeAll([{ name: beacon.name, body }]);
  t.deepEqual(seen.beaconHits, ['/beacon/remote-image-beacon']);
  t.is(seen.flag, null);
});

test('Chromium: a sanitised mail page passes the accessibility check; an unlabelled image does not', async (t) => {
  const chromiumBrowser = await browser();
  const probe = await new PayloadProbe(chromiumBrowser).listen();
  t.teardown(() => probe.close());
  const page = await chromiumBrowser.newPage();
  t.teardown(() => page.close());

  const mail = corpus.find((p) => p.name === 'remote-image-beacon')!;
  await page.goto(probe.serve('accessible', sanitizeMailHtml(probe.withPort(mail.html), BLOCKED).html));
  t.deepEqual(await checkAccessibility(page), []);
  const shot = await screenshot(page, import.meta.url, 'sanitised remote image mail');
  t.regex(shot, /test\/screenshots\/sanitize-mail\/\d\d-sanitised-remote-image-mail\.png$/);
  t.true(statSync(shot).size > 0);

  await page.goto(probe.serve('unlabelled', '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'));
  const violations = await checkAccessibility(page);
  t.deepEqual(
    violations.map((v) => [v.id, v.targets]),
    [['image-alt', ['img']]],
  );
});
