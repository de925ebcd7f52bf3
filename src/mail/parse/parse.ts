import { createHash } from 'node:crypto';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import { convert as htmlToText } from 'html-to-text';

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

function addresses(obj: AddressObject | AddressObject[] | undefined): MailAddress[] {
  const out: MailAddress[] = [];
  const visit = (entries: AddressObject['value']) => {
    for (const e of entries) {
      if (e.group) visit(e.group);
      else if (e.address) out.push({ address: e.address.trim().toLowerCase(), name: (e.name ?? '').trim() });
    }
  };
  for (const o of Array.isArray(obj) ? obj : obj ? [obj] : []) visit(o.value);
  return out;
}

function headerLines(mail: ParsedMail): HeaderLine[] {
  return (mail.headerLines ?? []).map((h) => {
    const colon = h.line.indexOf(':');
    const value = colon >= 0 ? h.line.slice(colon + 1) : '';
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
 * every charset mailparser knows (ISO-8859-*, Windows-125x, ISO-2022-JP, …) and keeps
 * attachments byte-exact.
 */
export async function parseMessage(raw: Buffer): Promise<ParsedMessage> {
  const mail = await simpleParser(raw, { skipImageLinks: true, skipTextLinks: true, skipTextToHtml: true, keepCidLinks: true });
  const headers = headerLines(mail);
  const html = typeof mail.html === 'string' && mail.html.trim() ? mail.html : null;
  let text = mail.text ?? '';
  if (!text.trim() && html) text = htmlToText(html, { wordwrap: false });
  const refs = messageIdList(headerValue(headers, 'references'));
  return {
    from: addresses(mail.from)[0] ?? null,
    to: addresses(mail.to),
    cc: addresses(mail.cc),
    replyTo: addresses(mail.replyTo),
    subject: (mail.subject ?? '').replace(/\s+/g, ' ').trim(),
    messageId: normalizeMessageId(mail.messageId),
    inReplyTo: messageIdList(headerValue(headers, 'in-reply-to'))[0] ?? null,
    references: refs,
    date: mail.date && !Number.isNaN(mail.date.getTime()) ? mail.date.toISOString() : null,
    text,
    html,
    attachments: mail.attachments.map((a) => ({
      filename: a.filename ?? null,
      contentType: a.contentType || 'application/octet-stream',
      size: a.content.length,
      sha256: sha256Hex(a.content),
      contentId: a.contentId ?? null,
      inline: a.contentDisposition === 'inline',
      content: a.content,
    })),
    headers,
    authResults: headerValue(headers, 'authentication-results'),
  };
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
  };
}
