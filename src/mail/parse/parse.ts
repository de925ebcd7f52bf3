import { createHash } from 'node:crypto';
import { parseAddressHeader, simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import { convert as htmlToText } from 'html-to-text';
// Only its table of file types by extension (the one mailparser uses for unnamed types too).
import { detectMimeType } from 'nodemailer/lib/mime-funcs';
import { contentHash } from './content-hash.ts';
import { headerBlockEnd, transcodeRawHeaders } from './header-charset.ts';
import { readTnef } from './tnef.ts';
import { extractUuencoded } from './uuencode.ts';

export interface MailAddress {
  address: string;
  name: string;
}

export interface ParsedAttachment {
  filename: string | null;
  contentType: string;
  size: number;
  sha256: string;
  contentId: string | null;
  inline: boolean;
  content: Buffer;
}

export interface HeaderLine {
  key: string;
  value: string;
}

/** What the rest of helpgate knows of a mail: no mailparser types leak past this room. */
export interface ParsedMessage {
  from: MailAddress | null;
  to: MailAddress[];
  cc: MailAddress[];
  replyTo: MailAddress[];
  subject: string;
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  date: string | null;
  text: string;
  html: string | null;
  attachments: ParsedAttachment[];
  /** Every header as received (unfolded), keys lower-case, in order. */
  headers: HeaderLine[];
  authResults: string | null;
  /** Same hash, same mail: see content-hash.ts (a redelivery is told from a reused Message-ID). */
  contentHash: string;
}

/** Message-IDs are kept as "<id>": trimmed, one pair of angle brackets. */
export function normalizeMessageId(id: string | null | undefined): string | null {
  if (!id) return null;
  const inner = id.trim().replace(/^<+/, '').replace(/>+$/, '').trim();
  if (!inner || /[\s<>]/.test(inner)) return null;
  return `<${inner}>`;
}

/** All Message-IDs in a header value such as References ("<a@x> <b@y>"). */
export function messageIdList(value: string | string[] | undefined | null): string[] {
  if (!value) return [];
  const text = Array.isArray(value) ? value.join(' ') : value;
  const ids = text.match(/<[^<>\s]+>/g) ?? [];
  return [...new Set(ids.map((id) => normalizeMessageId(id)!).filter(Boolean))];
}

/**
 * The addresses of every header `key`, in order, skipping entries that name no address (an
 * unparseable first From is passed over for the next one). A header holding exactly one address
 * keeps its display name as written: an unquoted comma, colon or parenthesis in a name
 * ("Dr. Anna O'Neil-Smith, PhD", "Müller, Hans (IT)", "Lab: Imaging") is part of it, not
 * RFC 5322 syntax to take apart.
 */
function addressHeader(headers: HeaderLine[], key: string): MailAddress[] {
  const out: MailAddress[] = [];
  for (const h of headers) {
    if (h.key !== key) continue;
    const found: MailAddress[] = [];
    const visit = (entries: AddressObject['value']) => {
      for (const e of entries) {
        if (e.group) visit(e.group);
        else if (e.address && e.address.includes('@')) found.push({ address: e.address.trim().toLowerCase(), name: (e.name ?? '').trim() });
      }
    };
    visit(parseAddressHeader(h.value).value);
    const written = found.length === 1 ? nameAsWritten(h.value) : null;
    if (written) found[0]!.name = written;
    out.push(...found);
  }
  return out;
}

/** The text before the header's only <address>, unquoted if it is one quoted string. */
function nameAsWritten(value: string): string | null {
  const angles = [...value.matchAll(/<[^<>]*>/g)];
  if (angles.length !== 1) return null;
  const name = value.slice(0, angles[0]!.index).replace(/\s+/g, ' ').trim();
  // Encoded-words are decoded by the address parser, which then has the right name already.
  if (!name || /=\?[^?]+\?[bq]\?/i.test(name)) return null;
  const quoted = /^"((?:[^"\\]|\\.)*)"$/.exec(name);
  return quoted ? quoted[1]!.replace(/\\(.)/g, '$1') : name;
}

function attachment(content: Buffer, filename: string | null, contentType: string, contentId: string | null, inline: boolean): ParsedAttachment {
  return { filename, contentType: contentType || 'application/octet-stream', size: content.length, sha256: sha256Hex(content), contentId, inline, content };
}

/** A name for parts that come without one, so that they download as what they are. */
function defaultName(contentType: string): string | null {
  if (contentType === 'message/rfc822') return 'message.eml';
  if (contentType === 'text/rfc822-headers') return 'message-headers.txt';
  if (contentType === 'message/delivery-status') return 'delivery-status.txt';
  return null;
}

function isTnefPart(contentType: string, filename: string | undefined): boolean {
  return contentType === 'application/ms-tnef' || contentType === 'application/vnd.ms-tnef' || /^win(mail)?\.dat$/i.test(filename ?? '');
}

function typeByName(filename: string | null): string {
  return detectMimeType(filename ?? false);
}

function headerLines(mail: ParsedMail): HeaderLine[] {
  return (mail.headerLines ?? []).map((h) => {
    // mailparser gives each raw line as one character per byte; the block is UTF-8 (header-charset.ts).
    const line = /[\x80-\xff]/.test(h.line) && !/[^\x00-\xff]/.test(h.line) ? Buffer.from(h.line, 'latin1').toString('utf8') : h.line;
    const colon = line.indexOf(':');
    const value = colon >= 0 ? line.slice(colon + 1) : '';
    return { key: h.key.toLowerCase(), value: value.replace(/\r?\n[ \t]+/g, ' ').trim() };
  });
}

export function headerValue(headers: HeaderLine[], key: string): string | null {
  return headers.find((h) => h.key === key)?.value ?? null;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * raw → ParsedMessage. Tolerant of broken MIME (mailparser recovers what it can), decodes
 * every charset mailparser knows (ISO-8859-*, Windows-125x, ISO-2022-JP, …) and undeclared
 * 8-bit headers (header-charset.ts), keeps attachments byte-exact, and unpacks what hides
 * files in a body: uuencoded blocks and Outlook's winmail.dat (TNEF, kept as well).
 */
export async function parseMessage(raw: Buffer): Promise<ParsedMessage> {
  const input = transcodeRawHeaders(raw);
  const head = input.subarray(0, headerBlockEnd(input)).toString('utf8');
  const mail = await simpleParser(input, {
    skipImageLinks: true,
    skipTextLinks: true,
    keepCidLinks: true,
    // A text part beside an HTML part (multipart/mixed: a body and a footer, a forward with a
    // note) reaches the HTML only through mailparser's text-to-HTML conversion; without it that
    // text is missing from the HTML the ticket shows. A mail without any HTML part skips the
    // conversion: its result (textAsHtml) is never used and doubles the parse of a large text.
    skipTextToHtml: !/text\/html/i.test(input.toString('latin1')),
    // The original message inside a bounce report stays one attachment, even marked inline.
    ignoreEmbedded: /^content-type:[ \t]*multipart\/report/im.test(head),
  });
  const headers = headerLines(mail);
  let html = typeof mail.html === 'string' && mail.html.trim() ? mail.html : null;
  const uu = extractUuencoded(mail.text ?? '');
  let text = uu.text;
  const attachments: ParsedAttachment[] = [];
  for (const a of mail.attachments) {
    // An embedded message marked inline is still a file of its own (its parts are not in the text).
    const inline = a.contentDisposition === 'inline' && a.contentType !== 'message/rfc822';
    attachments.push(attachment(a.content, a.filename ?? defaultName(a.contentType), a.contentType, a.contentId ?? null, inline));
    const tnef = isTnefPart(a.contentType, a.filename) ? readTnef(a.content) : null;
    if (!tnef) continue;
    // Outlook's winmail.dat: its files join the mail's, and its body stands in for an empty one.
    for (const f of tnef.attachments) attachments.push(attachment(f.content, f.filename, f.contentType ?? typeByName(f.filename), null, false));
    if (!text.trim() && tnef.text?.trim()) text = tnef.text.replace(/\r\n?/g, '\n');
    if (!html && tnef.html?.trim()) html = tnef.html;
  }
  for (const f of uu.files) attachments.push(attachment(f.content, f.filename, typeByName(f.filename), null, false));
  if (!text.trim() && html) text = htmlToText(html, { wordwrap: false });
  const replyTo = addressHeader(headers, 'reply-to');
  const parsed = {
    // The first From that names an address; without one, the Reply-To (ingest falls back to the envelope).
    from: addressHeader(headers, 'from')[0] ?? replyTo[0] ?? null,
    to: addressHeader(headers, 'to'),
    cc: addressHeader(headers, 'cc'),
    replyTo,
    subject: (mail.subject ?? '').replace(/\s+/g, ' ').trim(),
    messageId: normalizeMessageId(mail.messageId),
    inReplyTo: messageIdList(headerValue(headers, 'in-reply-to'))[0] ?? null,
    references: messageIdList(headerValue(headers, 'references')),
    date: mail.date && !Number.isNaN(mail.date.getTime()) ? mail.date.toISOString() : null,
    text,
    html,
    attachments,
    headers,
    authResults: headerValue(headers, 'authentication-results'),
  };
  return { ...parsed, contentHash: contentHash(parsed) };
}

/** The JSON shape printed by `helpgate parse` (attachment bytes left out). */
export function parsedToJson(m: ParsedMessage) {
  return {
    from: m.from,
    to: m.to,
    cc: m.cc,
    replyTo: m.replyTo,
    subject: m.subject,
    messageId: m.messageId,
    inReplyTo: m.inReplyTo,
    references: m.references,
    date: m.date,
    text: m.text,
    html: m.html,
    attachments: m.attachments.map(({ content: _content, ...rest }) => rest),
    authResults: m.authResults,
    contentHash: m.contentHash,
  };
}
