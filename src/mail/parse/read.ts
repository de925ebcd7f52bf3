import { verifyMessage, type Arrival, type MailVerdict, type VerifyOptions } from '../auth/verify.ts';
import { automationReason } from './automated.ts';
import { parseDeliveryReport, type DeliveryReport } from './dsn.ts';
import { parseMessage, type MailAddress, type ParsedMessage } from './parse.ts';
import { trimReply } from './quotes.ts';
import { cleanSubject, findTicketTags } from './subject.ts';

/** The `/…` lines at the top of a text, split off from the rest (read against the units in domain/engine/commands.ts). */
export interface CommandLines {
  lines: string[];
  /** The text after the command lines, trimmed. */
  rest: string;
}

/** Everything ingest needs to know about one received mail, read once. */
export interface MailReading {
  message: ParsedMessage;
  /** The From: address, else the envelope sender; null when the mail names nobody. */
  sender: MailAddress | null;
  /** The mail's new text: its text without the quoted mail and signature (quotes.ts). */
  newText: string;
  /** The subject without reply prefixes and our tag. */
  subject: string;
  /** Our ticket numbers in the subject, in order. */
  tags: number[];
  /** Why the mail must get no automatic answer, or null (automated.ts). */
  automated: string | null;
  /** The command lines at the top of the new text. */
  commands: CommandLines;
  /** Its authentication (mailauth against DNS, a trusted hop's results). */
  verdict: MailVerdict;
  /** Why the verdict is the empty one, when mailauth could not read the mail at all. */
  verifyError: string | null;
  /** Its delivery status report, when it is one. */
  report: DeliveryReport | null;
}

export interface ReadOptions {
  ticketPrefix: string;
  /** Our helpdesk address, as written in our loop header. */
  ownAddress: string;
  envelope: Arrival;
  verify: VerifyOptions;
}

/** The verdict of a mail mailauth cannot read: nothing passed. */
const UNREAD_VERDICT: MailVerdict = {
  spf: { result: 'none', domain: null },
  dkim: { result: 'none', domains: [] },
  dmarc: { result: 'none', domain: null, policy: null },
  arc: { result: 'none' },
  headerFrom: null,
  alignedDomain: null,
  hop: null,
};

/** Reads a received mail once: parsed, trimmed, tagged, classified and authenticated. */
export async function readMail(raw: Buffer, opts: ReadOptions): Promise<MailReading> {
  const message = await parseMessage(raw);
  const sender = senderOf(message, opts.envelope.mailFrom);
  const newText = trimReply(message.text).text;
  let verdict: MailVerdict;
  let verifyError: string | null = null;
  try {
    verdict = await verifyMessage(raw, opts.envelope, opts.verify);
  } catch (err) {
    // A message mailauth cannot read at all is simply not authenticated.
    verdict = UNREAD_VERDICT;
    verifyError = (err as Error).message;
  }
  return {
    message,
    sender,
    newText,
    subject: cleanSubject(message.subject, opts.ticketPrefix),
    tags: findTicketTags(message.subject, opts.ticketPrefix),
    automated: automationReason({ headers: message.headers, from: sender?.address ?? null, mailFrom: opts.envelope.mailFrom, ownAddress: opts.ownAddress }),
    commands: splitCommandLines(newText),
    verdict,
    verifyError,
    report: parseDeliveryReport(raw),
  };
}

/** Who sent the mail: its From:, else the envelope sender. */
function senderOf(mail: ParsedMessage, mailFrom: string | null): MailAddress | null {
  if (mail.from) return mail.from;
  return mailFrom ? { address: mailFrom.toLowerCase(), name: '' } : null;
}

/** At most this many command lines are read; the one past it starts the rest. */
const MAX_COMMAND_LINES = 20;

/**
 * The command lines at the top of a text, before any other text: lines starting with "/".
 * Blank lines before and between them are allowed; the first other line ends them.
 */
export function splitCommandLines(text: string): CommandLines {
  const all = text.replace(/\r\n?/g, '\n').split('\n');
  const lines: string[] = [];
  let i = 0;
  for (; i < all.length; i++) {
    const line = all[i]!.trim();
    if (!line) continue;
    if (!line.startsWith('/')) break;
    lines.push(line);
    if (lines.length > MAX_COMMAND_LINES) break;
  }
  return { lines, rest: all.slice(i).join('\n').trim() };
}
