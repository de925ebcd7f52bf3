import { simpleParser, type ParsedMail } from 'mailparser';
import { convert as htmlToText } from 'html-to-text';

/** A header as a person reads it: its name as written, its value decoded (encoded words, addresses). */
export interface ReadableHeader {
  name: string;
  value: string;
}

export interface ReadableAttachment {
  filename: string | null;
  contentType: string;
  size: number;
  contentId: string | null;
  inline: boolean;
  content: Buffer;
}

/**
 * A mail decoded for reading (the captured outbound mail shown by `helpgate outbox show` and the
 * portal's Mail page): no quoted-printable or base64 left, header values decoded, and the links
 * it contains listed, so that a sign-in link can be followed as it was meant.
 */
export interface ReadableMail {
  subject: string;
  from: string;
  to: string;
  cc: string;
  date: string | null;
  messageId: string | null;
  headers: ReadableHeader[];
  text: string;
  /** The HTML part as written: whoever shows it must sanitise it first. */
  html: string | null;
  attachments: ReadableAttachment[];
  /** http(s) links in the text and the HTML, each once, in the order they first appear. */
  links: string[];
}

/** A URL ends before white space, quotes, angle brackets, and trailing punctuation of the sentence. */
const TEXT_URL = /https?:\/\/[^\s<>"'`]+/gi;
const HREF = /\bhref\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))/gi;

function decodeEntities(value: string): string {
  return value
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(Number(dec)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function webLink(candidate: string): string | null {
  const trimmed = candidate.trim().replace(/[.,;:!?)\]]+$/, '');
  try {
    const url = new URL(trimmed);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

export function linksIn(text: string, html: string | null): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(TEXT_URL)) found.push(m[0]);
  for (const m of (html ?? '').matchAll(HREF)) found.push(decodeEntities(m[2] ?? m[3] ?? m[4] ?? ''));
  return [...new Set(found.map(webLink).filter((l): l is string => l !== null))];
}

/** One decoded header value from mailparser's parsed map; null where it keeps no plain form. */
function shown(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toUTCString();
  if (Array.isArray(value)) return value.every((v) => typeof v === 'string') ? value.join(' ') : null;
  if (value && typeof value === 'object') {
    const v = value as { text?: unknown; value?: unknown; params?: Record<string, unknown> };
    if (typeof v.text === 'string') return v.text;
    if (typeof v.value === 'string') {
      const params = Object.entries(v.params ?? {}).map(([k, p]) => `; ${k}=${String(p)}`);
      return v.value + params.join('');
    }
  }
  return null;
}

function readableHeaders(mail: ParsedMail): ReadableHeader[] {
  const seen = new Map<string, number>();
  return (mail.headerLines ?? []).map((line) => {
    const colon = line.line.indexOf(':');
    const name = colon >= 0 ? line.line.slice(0, colon).trim() : line.key;
    const raw = (colon >= 0 ? line.line.slice(colon + 1) : '').replace(/\r?\n[ \t]+/g, ' ').trim();
    // A DKIM signature is for machines (hashes in base64): a person needs who signed, with which key.
    if (line.key === 'dkim-signature') return { name, value: dkimSummary(raw) };
    // A header that occurs more than once (Received) is an array in the map: take this occurrence.
    const n = seen.get(line.key) ?? 0;
    seen.set(line.key, n + 1);
    const parsed = mail.headers.get(line.key);
    const value = Array.isArray(parsed) && line.key !== 'references' ? parsed[n] : parsed;
    return { name, value: shown(value) ?? raw };
  });
}

function dkimSummary(value: string): string {
  const tag = (name: string) => new RegExp(`(?:^|;)\\s*${name}=([^;]*)`).exec(value)?.[1]?.replace(/\s+/g, '').trim();
  return `signed by d=${tag('d') ?? '?'}, s=${tag('s') ?? '?'} (signature not shown)`;
}

/** raw MIME → ReadableMail. */
export async function readableMail(raw: Buffer): Promise<ReadableMail> {
  const mail = await simpleParser(raw, { skipImageLinks: true, skipTextLinks: true, skipTextToHtml: true, keepCidLinks: true });
  const html = typeof mail.html === 'string' && mail.html.trim() ? mail.html : null;
  let text = mail.text ?? '';
  if (!text.trim() && html) text = htmlToText(html, { wordwrap: false });
  const addressText = (v: ParsedMail['to']) => (Array.isArray(v) ? v.map((a) => a.text).join(', ') : (v?.text ?? ''));
  return {
    subject: (mail.subject ?? '').trim(),
    from: mail.from?.text ?? '',
    to: addressText(mail.to),
    cc: addressText(mail.cc),
    date: mail.date && !Number.isNaN(mail.date.getTime()) ? mail.date.toISOString() : null,
    messageId: mail.messageId ?? null,
    headers: readableHeaders(mail),
    text,
    html,
    attachments: mail.attachments.map((a) => ({
      filename: a.filename ?? null,
      contentType: a.contentType || 'application/octet-stream',
      size: a.content.length,
      contentId: a.contentId ? a.contentId.replace(/^<|>$/g, '') : null,
      inline: a.contentDisposition === 'inline',
      content: a.content,
    })),
    links: linksIn(text, html),
  };
}
