import { normalizeMessageId } from './parse.ts';

/**
 * Delivery status notifications (RFC 3464, in the multipart/report of RFC 6522, and their
 * internationalised form of RFC 6533): raw → who could not be reached, why, and which mail of
 * ours it was.
 *
 * Read from the raw message rather than from mailparser's result: mailparser folds the
 * message/delivery-status part into the text body and keeps no part tree, and the fields
 * (Final-Recipient, Action, Status, Diagnostic-Code) and the returned headers are exactly what
 * is needed. A report has a fixed shape — a multipart/report with a human part, the
 * machine-readable part and the returned message or headers — so a short walk over its parts
 * is enough (base64 and quoted-printable parts decoded). Only a report that is the message
 * itself counts: a report forwarded inside someone's mail is that person writing.
 */

export type DeliveryAction = 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';

export interface DsnRecipient {
  /** The Final-Recipient (or Original-Recipient) address, lower-case. */
  address: string;
  /** The Original-Recipient, when given: the address the mail was sent to, before forwarding. */
  original: string | null;
  action: DeliveryAction;
  /** The enhanced status code (RFC 3463), e.g. "5.1.1". */
  status: string;
  /** The Diagnostic-Code as the remote server gave it (its type prefix, "smtp;", removed), or null. */
  diagnostic: string | null;
  remoteMta: string | null;
}

export interface DeliveryReport {
  reportingMta: string | null;
  recipients: DsnRecipient[];
  /** The Message-ID in the returned message or headers: the mail this report is about. */
  originalMessageId: string | null;
}

interface Part {
  headers: Map<string, string>;
  body: Buffer;
}

const ACTIONS = new Set<DeliveryAction>(['failed', 'delayed', 'delivered', 'relayed', 'expanded']);

/** The report in `raw`, or null when it holds no delivery status notification. */
export function parseDeliveryReport(raw: Buffer): DeliveryReport | null {
  const report = splitPart(raw);
  if (!isDeliveryReport(report)) return null;
  const parts = multipartChildren(report);
  const status = parts.find((p) => /^message\/(global-)?delivery-status$/.test(mediaType(p)));
  if (!status) return null;
  const returned = parts.find((p) => /^(text\/rfc822-headers|message\/rfc822|message\/global|message\/global-headers)$/.test(mediaType(p)));
  const [perMessage, ...perRecipient] = fieldGroups(decodeBody(status).toString('utf8'));
  return {
    reportingMta: typed(perMessage?.get('reporting-mta')),
    recipients: perRecipient.map(recipientOf).filter((r): r is DsnRecipient => !!r),
    originalMessageId: returned ? normalizeMessageId(splitPart(decodeBody(returned)).headers.get('message-id')) : null,
  };
}

function isDeliveryReport(part: Part): boolean {
  if (mediaType(part) !== 'multipart/report') return false;
  const reportType = param(part.headers.get('content-type'), 'report-type')?.toLowerCase();
  // Some MTAs leave out report-type; the parts then tell.
  return !reportType || reportType === 'delivery-status' || reportType === 'global-delivery-status';
}

function recipientOf(fields: Map<string, string>): DsnRecipient | null {
  const address = addressOf(fields.get('final-recipient')) ?? addressOf(fields.get('original-recipient'));
  const diagnostic = typed(fields.get('diagnostic-code'));
  const statusField = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(fields.get('status') ?? '')?.[1];
  // Without a Status field, the code in the diagnostic, or the class the action implies.
  const fromDiagnostic = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(diagnostic ?? '')?.[1];
  const actionField = fields.get('action')?.trim().toLowerCase() as DeliveryAction | undefined;
  const status = statusField ?? fromDiagnostic ?? (actionField === 'failed' ? '5.0.0' : actionField === 'delayed' ? '4.0.0' : null);
  const action = actionField && ACTIONS.has(actionField) ? actionField : status?.startsWith('5') ? 'failed' : status?.startsWith('4') ? 'delayed' : null;
  if (!address || !action) return null;
  return { address, original: addressOf(fields.get('original-recipient')), action, status: status ?? '2.0.0', diagnostic, remoteMta: typed(fields.get('remote-mta')) };
}

/** "rfc822; someone@example.org" → someone@example.org */
function addressOf(value: string | undefined): string | null {
  const address = typed(value)?.replace(/^<|>$/g, '').trim().toLowerCase();
  return address && address.includes('@') ? address : null;
}

/** A DSN field value without its type ("smtp; 550 …" → "550 …"). */
function typed(value: string | undefined): string | null {
  if (!value) return null;
  const semi = value.indexOf(';');
  const v = (semi >= 0 && /^[a-z0-9-]+$/i.test(value.slice(0, semi).trim()) ? value.slice(semi + 1) : value).replace(/\s+/g, ' ').trim();
  return v || null;
}

/** The blank-line separated groups of header-like fields of a message/delivery-status body. */
function fieldGroups(text: string): Map<string, string>[] {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n/)
    .map((block) => headerMap(block))
    .filter((m) => m.size > 0);
}

/** Header lines (folded continuation lines joined) → lower-case name → first value. */
function headerMap(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of block.replace(/\r\n?/g, '\n').replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!out.has(name)) out.set(name, line.slice(colon + 1).trim());
  }
  return out;
}

/** A message or body part: its headers and its (still encoded) body. Only the header is decoded to text. */
function splitPart(data: Buffer): Part {
  // A part without headers starts with the blank line.
  const end = data[0] === 0x0a ? { at: 0, length: 1 } : data[0] === 0x0d && data[1] === 0x0a ? { at: 0, length: 2 } : headerEnd(data);
  const head = data.subarray(0, end ? end.at : data.length).toString('latin1');
  const body = end ? data.subarray(end.at + end.length) : Buffer.alloc(0);
  return { headers: headerMap(head), body };
}

/** Where the header ends: the first empty line (CRLF or bare LF line ends). */
function headerEnd(data: Buffer): { at: number; length: number } | null {
  const crlf = data.indexOf('\r\n\r\n');
  const lf = data.indexOf('\n\n');
  if (crlf < 0 && lf < 0) return null;
  return crlf >= 0 && (lf < 0 || crlf < lf) ? { at: crlf, length: 4 } : { at: lf, length: 2 };
}

function mediaType(part: Part): string {
  return (part.headers.get('content-type') ?? 'text/plain').split(';')[0]!.trim().toLowerCase();
}

/** A parameter of a structured header value, e.g. boundary of Content-Type. */
function param(value: string | undefined, name: string): string | null {
  if (!value) return null;
  const re = new RegExp(`;\\s*${name}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]+))`, 'i');
  const m = re.exec(value);
  return m ? (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!) : null;
}

function multipartChildren(part: Part): Part[] {
  const boundary = param(part.headers.get('content-type'), 'boundary');
  if (!boundary) return [];
  const text = part.body.toString('latin1');
  const delimiter = `--${boundary}`;
  const out: Part[] = [];
  let pos = text.startsWith(delimiter) ? 0 : text.indexOf(`\n${delimiter}`);
  while (pos >= 0) {
    const lineEnd = text.indexOf('\n', pos + 1);
    // The closing delimiter "--boundary--", or a body that ends without one (broken MIME).
    if (lineEnd < 0 || text.startsWith(`${delimiter}--`, text[pos] === '\n' ? pos + 1 : pos)) break;
    const next = text.indexOf(`\n${delimiter}`, lineEnd);
    const end = next < 0 ? text.length : next;
    const chunk = text.slice(lineEnd + 1, end).replace(/\r$/, '');
    out.push(splitPart(Buffer.from(chunk, 'latin1')));
    pos = next;
  }
  return out;
}

function decodeBody(part: Part): Buffer {
  const encoding = (part.headers.get('content-transfer-encoding') ?? '').trim().toLowerCase();
  if (encoding === 'base64') return Buffer.from(part.body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(part.body.toString('latin1'));
  return part.body;
}

function decodeQuotedPrintable(text: string): Buffer {
  const unfolded = text.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < unfolded.length; i++) {
    const hex = unfolded[i] === '=' ? unfolded.slice(i + 1, i + 3) : '';
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else bytes.push(unfolded.charCodeAt(i) & 0xff);
  }
  return Buffer.from(bytes);
}
