/**
 * Shows a mail body to real Chromium inside a page shaped like the portal's, and reports
 * everything a hostile body could make the browser do: run script (a `window.__pwned` flag,
 * a dialog), fetch something (a request to the local beacon server, or to anywhere), or
 * leave the page. The page is served without any Content-Security-Policy, so whatever
 * is stopped is stopped by the markup alone.
 *
 * Payload files write beacon URLs as http://127.0.0.1:__PORT__/beacon/<file name>…; the
 * probe fills in the port of its own server.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Dialog, Frame, Page, Request } from 'playwright-core';
import type { TestBrowser } from './browser.ts';
import { until } from './wait.ts';

export const PORT_PLACEHOLDER = '__PORT__';

export interface Observation {
  name: string;
  /** String form of `window.__pwned` when something set it (script, or a named element). */
  flag: string | null;
  dialogs: string[];
  /** Paths of requests that reached the beacon server for this payload. */
  beaconHits: string[];
  /** Every URL the page requested besides the document itself. */
  requests: string[];
  /** The page navigated away after it had loaded. */
  navigated: boolean;
  /** Elements and attributes in the rendered DOM that should never survive sanitising. */
  domProblems: string[];
}

const HARNESS_SCRIPT =
  // Frames of another origin (data: URLs) cannot touch the page; they report by message.
  "addEventListener('message', (e) => { if (e.data === 'pwned') window.__pwned = 1; });";

function documentFor(name: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Received mail: ${name}</title>
<script data-harness>${HARNESS_SCRIPT}</script>
</head>
<body>
<main>
<h1>Received mail</h1>
<article id="mail">${body}</article>
</main>
</body>
</html>`;
}

/**
 * What a reader might do after the page loaded: click everything clickable except links to
 * the outside world (http, https, mailto), which would leave the machine; the audit below
 * checks that those are all a sanitised page has.
 */
const ACTIVATE = `(() => {
  const outward = (el) => {
    if (el.namespaceURI !== 'http://www.w3.org/1999/xhtml') return false;
    const href = el.getAttribute('href');
    if (href === null) return false;
    try { return ['http:', 'https:', 'mailto:'].includes(new URL(href, document.baseURI).protocol); } catch { return false; }
  };
  let clicked = 0;
  for (const el of document.querySelectorAll('a, area, button, input[type=submit], input[type=image], summary')) {
    if ((el.localName === 'a' || el.localName === 'area') && outward(el)) continue;
    el.dispatchEvent(new MouseEvent('click', { bubbles: true, cancelable: true, view: window }));
    clicked++;
  }
  return clicked;
})()`;

/** Structural audit of the rendered DOM, after the browser's own parsing of the markup. */
const AUDIT = `(() => {
  const problems = [];
  const XHTML = 'http://www.w3.org/1999/xhtml';
  const fetching = ['src', 'srcset', 'background', 'poster', 'action', 'formaction', 'xlink:href', 'lowsrc', 'dynsrc', 'data', 'ping', 'srcdoc', 'codebase', 'longdesc'];
  for (const el of document.querySelectorAll('#mail *')) {
    const tag = el.localName;
    if (el.namespaceURI !== XHTML) problems.push('<' + tag + '> in namespace ' + el.namespaceURI);
    if (['script', 'style', 'iframe', 'frame', 'object', 'embed', 'applet', 'form', 'input', 'button', 'textarea', 'select',
         'meta', 'link', 'base', 'template', 'noscript', 'video', 'audio', 'source', 'marquee', 'details', 'svg', 'math'].includes(tag)) {
      problems.push('<' + tag + '> element');
    }
    for (const { name, value } of el.attributes) {
      if (name.startsWith('on')) problems.push('<' + tag + ' ' + name + '> handler');
      else if (name === 'id' || name === 'name') problems.push('<' + tag + ' ' + name + '> names a global');
      else if (fetching.includes(name)) problems.push('<' + tag + ' ' + name + '="' + value + '">');
      else if (name === 'style' && /url\\(|expression|\\\\|behavior|binding/i.test(value)) problems.push('<' + tag + ' style="' + value + '">');
      else if (name === 'href') {
        let protocol = null;
        try { protocol = new URL(value).protocol; } catch {}
        if (!['http:', 'https:', 'mailto:'].includes(protocol)) problems.push('<' + tag + ' href="' + value + '">');
        if (tag !== 'a' || el.rel !== 'noopener noreferrer nofollow') problems.push('<' + tag + ' href> without rel=noopener');
      }
    }
  }
  for (const el of document.querySelectorAll('base, link, meta[http-equiv], style, script:not([data-harness]), iframe, object, embed')) {
    problems.push('<' + el.localName + '> in the page');
  }
  if (document.body.attributes.length > 0) problems.push('attributes on <body>: ' + [...document.body.attributes].map((a) => a.name).join(' '));
  return problems;
})()`;

const READ_FLAG = `(() => { const v = window.__pwned; return v === undefined ? null : String(v); })()`;
const TWO_FRAMES = 'new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(true))))';

function isNavigationError(err: unknown): boolean {
  return err instanceof Error && /context was destroyed|navigat/i.test(err.message);
}

export class PayloadProbe {
  private server: http.Server;
  private pages = new Map<string, string>();
  /** Every beacon request this server received, in order. */
  readonly beaconHits: string[] = [];
  port = 0;

  constructor(private readonly chromium: TestBrowser) {
    this.server = http.createServer((req, res) => {
      const path = req.url ?? '/';
      if (path.startsWith('/beacon/')) {
        this.beaconHits.push(path);
        res.writeHead(204).end();
        return;
      }
      const page = path.startsWith('/mail/') ? this.pages.get(path.slice('/mail/'.length)) : undefined;
      if (page === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page);
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** A payload file's text with the beacon port filled in. */
  withPort(payload: string): string {
    return payload.replaceAll(PORT_PLACEHOLDER, String(this.port));
  }

  /** The page URL under which `body` is served, for tests that drive the page themselves. */
  serve(name: string, body: string): string {
    const key = encodeURIComponent(name);
    this.pages.set(key, documentFor(name, body));
    return `http://127.0.0.1:${this.port}/mail/${key}`;
  }

  /**
   * Observes every payload, `parallel` at a time. Each worker reuses one page for its share
   * (a new page costs more than the payload does); every payload gets a fresh document.
   */
  async observeAll(payloads: { name: string; body: string }[], parallel = 3): Promise<Observation[]> {
    const results: Observation[] = new Array(payloads.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      const page = await this.chromium.newPage();
      try {
        while (next < payloads.length) {
          const i = next++;
          results[i] = await this.observe(page, payloads[i].name, payloads[i].body);
        }
      } finally {
        await page.close();
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, payloads.length) }, worker));
    return results;
  }

  /** Loads `body` in `page`, lets it settle, clicks what a reader might, and reports. */
  async observe(page: Page, name: string, body: string): Promise<Observation> {
    const url = this.serve(name, body);
    const dialogs: string[] = [];
    const requests: string[] = [];
    const pending = new Set<Request>();
    let loaded = false;
    let navigated = false;
    const onDialog = (d: Dialog): void => {
      dialogs.push(`${d.type()}: ${d.message()}`);
      void d.dismiss().catch(() => {});
    };
    const onRequest = (r: Request): void => {
      if (r.url() !== url) requests.push(r.url());
      pending.add(r);
    };
    const onDone = (r: Request): void => void pending.delete(r);
    const onNavigated = (f: Frame): void => {
      if (loaded && f === page.mainFrame()) navigated = true;
    };
    page.on('dialog', onDialog);
    page.on('request', onRequest);
    page.on('requestfinished', onDone);
    page.on('requestfailed', onDone);
    page.on('framenavigated', onNavigated);

    const evaluateUnlessGone = async <T>(expression: string, whenGone: T): Promise<T> => {
      try {
        return (await page.evaluate(expression)) as T;
      } catch (err) {
        if (!isNavigationError(err)) throw err;
        navigated = true;
        return whenGone;
      }
    };
    // Load and lazy work (frames, fetches started by script, media errors) are done when
    // no request is open and two animation frames have passed.
    const settle = async (): Promise<void> => {
      await until(() => pending.size === 0, { timeoutMs: 5_000, intervalMs: 10, what: `${name}: open requests to finish` });
      await evaluateUnlessGone(TWO_FRAMES, true);
    };
    try {
      await page.goto(url, { waitUntil: 'load' });
      loaded = true;
      await settle();
      await evaluateUnlessGone(ACTIVATE, 0);
      await settle();
      const flag = await evaluateUnlessGone<string | null>(READ_FLAG, null);
      const domProblems = await evaluateUnlessGone<string[]>(AUDIT, []);
      const own = `/beacon/${name}`;
      const beaconHits = this.beaconHits.filter((p) => p === own || p.startsWith(`${own}/`));
      return { name, flag, dialogs, beaconHits, requests, navigated, domProblems };
    } finally {
      page.off('dialog', onDialog);
      page.off('request', onRequest);
      page.off('requestfinished', onDone);
      page.off('requestfailed', onDone);
      page.off('framenavigated', onNavigated);
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
