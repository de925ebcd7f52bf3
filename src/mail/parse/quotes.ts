/**
 * Reply trimming: the new text of a reply mail, without the quoted history and the
 * signature, so a ticket thread does not grow by the whole history at every reply
 * (the full mail is kept elsewhere).
 *
 * Hand-written rather than email-reply-parser: that library is only safe from
 * catastrophic backtracking with the native re2 module (its header patterns chain
 * several `(.*)`), and it also drops closings such as "Best regards". This file works
 * line by line with prefix/suffix tests and bounded lines only, so it stays linear on
 * any input, and it can keep interleaved answers and leading agent commands whole.
 *
 * Order of work:
 *  1. cut at the first reply header: "On … wrote:" and its six other languages (also
 *     wrapped over up to three lines), "-----Original Message-----", or an Outlook
 *     header block (From: followed by Sent/Date and To/Subject), together with the
 *     underscore line Outlook puts before it. A block introduced by a forward marker
 *     ("Begin forwarded message:") is content and stays;
 *  2. then, until nothing changes: drop a trailing block of ">" lines (and an
 *     attribution line right before it), a "-- " signature, a mobile footer.
 * If that leaves nothing, the whole text comes back, trimmed, as not quoted.
 */

export interface TrimmedReply {
  text: string;
  quoted: boolean;
  signature: boolean;
}

/** Longer lines are never headers, footers or separators; checking that first keeps hostile input cheap. */
const MAX_HEADER_CHARS = 400;
const MAX_FOOTER_CHARS = 120;
/** How many lines after "From:" may hold the rest of an Outlook header block. */
const OUTLOOK_BLOCK_WINDOW = 6;
/** A "--" without the trailing space counts as a signature delimiter only before this many lines. */
const MAX_LOOSE_SIGNATURE_LINES = 10;

/** Opening word and verb of "On <date>, <name> wrote:" in each language, lower-case. */
const WROTE_HEADERS: ReadonlyArray<{ open: string; verb: string }> = [
  { open: 'on ', verb: ' wrote' },
  { open: 'am ', verb: ' schrieb' },
  { open: 'le ', verb: ' a écrit' },
  { open: 'el ', verb: ' escribió' },
  { open: 'il ', verb: ' ha scritto' },
  { open: 'op ', verb: ' schreef' },
  { open: 'em ', verb: ' escreveu' },
];
/** Between the verb and the closing colon only a name and address may stand. */
const MAX_AFTER_VERB_CHARS = 120;

const ORIGINAL_MESSAGE_LABELS = new Set([
  'original message',
  'ursprüngliche nachricht',
  "message d'origine",
  'mensaje original',
  'messaggio originale',
  'oorspronkelijk bericht',
  'mensagem original',
]);

const OUTLOOK_FROM = new Set(['from', 'von', 'de', 'da', 'van']);
const OUTLOOK_DATE = new Set(['sent', 'date', 'gesendet', 'datum', 'envoyé', 'enviado', 'fecha', 'inviato', 'data', 'verzonden']);
const OUTLOOK_TO_OR_SUBJECT = new Set([
  'to', 'subject', 'an', 'betreff', 'à', 'objet', 'para', 'asunto', 'a', 'oggetto', 'aan', 'onderwerp', 'assunto',
]);

const OUTLOOK_OTHER = new Set(['cc', 'bcc', 'importance', 'attachments', 'wichtigkeit', 'anlagen', 'anhang']);

const FORWARD_MARKERS = new Set([
  'begin forwarded message:',
  'forwarded message',
  'original message follows',
  'weitergeleitete nachricht',
  'anfang der weitergeleiteten nachricht:',
  'message transféré',
  'début du message réexpédié :',
  'mensaje reenviado',
  'messaggio inoltrato',
  'doorgestuurd bericht',
  'mensagem encaminhada',
]);

const MOBILE_FOOTERS: readonly RegExp[] = [
  /^sent from my \S/,
  /^sent from (?:outlook|mail|yahoo mail|proton ?mail|samsung) /,
  /^get outlook for (?:ios|android)\b/,
  /^von meinem \S[^\n]* gesendet\.?$/,
  /^gesendet (?:von|mit) (?:meinem |outlook )/,
  /^envoyé de mon \S/,
  /^enviado desde mi \S/,
  /^inviato da(?: il mio)? \S/,
  /^verzonden (?:vanaf|met) /,
  /^enviado do meu \S/,
];

/** Attribution verbs accepted on a loose "Jana wrote:" line right before a trailing quote. */
const ATTRIBUTION_VERBS = ['wrote', 'schrieb', 'a écrit', 'escribió', 'ha scritto', 'schreef', 'escreveu'];

function isBlank(line: string): boolean {
  return line.trim() === '';
}

/** ">"-quoted, allowing the few spaces of indentation some clients put before it. */
function isQuoted(line: string): boolean {
  for (let i = 0; i < line.length && i < 4; i++) {
    const c = line[i];
    if (c === '>') return true;
    if (c !== ' ' && c !== '\t') return false;
  }
  return false;
}

/** Trimmed, lower-cased, with no-break and narrow spaces (French "écrit :") as plain spaces. */
function normalised(line: string): string {
  return line.replace(/[\u00a0\u202f\t]/g, ' ').trim().toLowerCase();
}

function hasDigit(s: string): boolean {
  return /\d/.test(s);
}

/** Contains "@" or a clock time "14:05" — what every client's wrapped header carries. */
function hasAddressOrTime(s: string): boolean {
  return s.includes('@') || /\d:\d\d/.test(s);
}

function isWroteHeaderText(s: string): boolean {
  if (!s.endsWith(':') || !hasDigit(s)) return false;
  for (const { open, verb } of WROTE_HEADERS) {
    if (!s.startsWith(open)) continue;
    const at = s.lastIndexOf(verb);
    if (at < open.length) continue;
    const after = at + verb.length;
    // the verb ends a word: "wrote:", "schrieb Jana:", "a écrit :"
    const next = s[after];
    if (next !== ':' && next !== ' ') continue;
    if (s.length - after <= MAX_AFTER_VERB_CHARS) return true;
  }
  return false;
}

/**
 * The index of the last line of an "On … wrote:" header starting at line i (one line,
 * or wrapped over two or three as Gmail does for long names), or -1.
 */
function wroteHeaderEnd(lines: readonly string[], i: number): number {
  const first = lines[i];
  if (first.length > MAX_HEADER_CHARS || isQuoted(first)) return -1;
  const head = normalised(first);
  if (!WROTE_HEADERS.some(({ open }) => head.startsWith(open))) return -1;
  if (isWroteHeaderText(head)) return i;
  let joined = head;
  for (let j = i + 1; j < lines.length && j <= i + 2; j++) {
    const previous = joined;
    // a wrapped header breaks mid-phrase, never after the end of a sentence
    if (/[.!?;:]$/.test(previous)) return -1;
    const line = lines[j];
    if (isBlank(line) || isQuoted(line)) return -1;
    if (joined.length + line.length > MAX_HEADER_CHARS) return -1;
    joined = `${previous} ${normalised(line)}`;
    if (isWroteHeaderText(joined) && hasAddressOrTime(joined)) return j;
  }
  return -1;
}

/** The index of the first line of an "On … wrote:" header ending at line k, or -1. */
function wroteHeaderStartingBefore(lines: readonly string[], k: number): number {
  for (let i = k; i >= 0 && i >= k - 2; i--) {
    if (wroteHeaderEnd(lines, i) === k) return i;
  }
  return -1;
}

/** "Jana Novak <jana@example.org> wrote:" without a date, accepted only right before a trailing quote. */
function isLooseAttribution(line: string): boolean {
  if (line.length > MAX_HEADER_CHARS) return false;
  const s = normalised(line);
  return s.endsWith(':') && ATTRIBUTION_VERBS.some((verb) => s.includes(verb));
}

/** A field label like "From" of "From: Jana", also written bold as "*From:*", lower-case; or undefined. */
function fieldLabel(line: string): string | undefined {
  if (line.length > MAX_HEADER_CHARS) return undefined;
  const s = normalised(line).replace(/^\*/, '');
  const colon = s.indexOf(':');
  if (colon < 1 || colon > 20) return undefined;
  return s.slice(0, colon).replace(/\*$/, '').trim();
}

/**
 * "From:" opening Outlook's block of the previous message: Sent/Date and To/Subject follow
 * within a few lines, every field line of the block is one Outlook writes, and no field
 * line stands right above "From:". So headers a user pastes ("Received:", "Message-ID:",
 * "Return-Path:" …) are not taken for history.
 */
function isOutlookBlockStart(lines: readonly string[], i: number): boolean {
  const label = fieldLabel(lines[i]);
  if (label === undefined || !OUTLOOK_FROM.has(label)) return false;
  const above = previousNonBlank(lines, i);
  if (above >= 0 && above === i - 1 && fieldLabel(lines[above]) !== undefined) return false;
  let date = false;
  let toOrSubject = false;
  for (let j = i + 1; j < lines.length && j <= i + OUTLOOK_BLOCK_WINDOW; j++) {
    if (isBlank(lines[j])) continue;
    const next = fieldLabel(lines[j]);
    if (next !== undefined && OUTLOOK_DATE.has(next)) date = true;
    else if (next !== undefined && OUTLOOK_TO_OR_SUBJECT.has(next)) toOrSubject = true;
    else if (next === undefined || !OUTLOOK_OTHER.has(next)) break;
  }
  return date && toOrSubject;
}

/** The text between the dashes of "-----Original Message-----", lower-case, or undefined. */
function dashedLabel(line: string): string | undefined {
  if (line.length > MAX_HEADER_CHARS) return undefined;
  const s = normalised(line);
  if (!s.startsWith('--') || !s.endsWith('--')) return undefined;
  let start = 0;
  let end = s.length;
  while (start < end && s[start] === '-') start++;
  while (end > start && s[end - 1] === '-') end--;
  return s.slice(start, end).trim();
}

function isForwardMarker(line: string): boolean {
  if (line.length > MAX_HEADER_CHARS) return false;
  return FORWARD_MARKERS.has(normalised(line)) || FORWARD_MARKERS.has(dashedLabel(line) ?? '');
}

function isUnderscoreLine(line: string): boolean {
  const s = line.trim();
  return s.length >= 20 && s.length <= MAX_HEADER_CHARS && /^_+$/.test(s);
}

/** The nearest non-blank line before i, looking back at most a few lines, or -1. */
function previousNonBlank(lines: readonly string[], i: number): number {
  for (let j = i - 1; j >= 0 && j >= i - 3; j--) {
    if (!isBlank(lines[j])) return j;
  }
  return -1;
}

function nextNonBlank(lines: readonly string[], i: number): number {
  for (let j = i + 1; j < lines.length && j <= i + 3; j++) {
    if (!isBlank(lines[j])) return j;
  }
  return -1;
}

function forwarded(lines: readonly string[], i: number): boolean {
  const before = previousNonBlank(lines, i);
  return before >= 0 && isForwardMarker(lines[before]);
}

/**
 * For each line, whether some ">" line at or after it is later followed by unquoted text:
 * then what follows is an interleaved answer, and a header above it must not cut it away.
 */
function interleavedFrom(lines: readonly string[]): boolean[] {
  const out = new Array<boolean>(lines.length + 1).fill(false);
  let textAfter = false;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i];
    out[i] = out[i + 1] || (isQuoted(line) && textAfter);
    if (!isBlank(line) && !isQuoted(line)) textAfter = true;
  }
  return out;
}

/** The index of the first line of the quoted history, or -1. */
function historyStart(lines: readonly string[]): number {
  const interleaved = interleavedFrom(lines);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (isQuoted(line) || isBlank(line)) continue;
    const label = dashedLabel(line);
    if (label !== undefined && ORIGINAL_MESSAGE_LABELS.has(label)) return i;
    if (isUnderscoreLine(line)) {
      const next = nextNonBlank(lines, i);
      if (next >= 0 && isOutlookBlockStart(lines, next) && !forwarded(lines, i)) return i;
      continue;
    }
    if (isOutlookBlockStart(lines, i) && !forwarded(lines, i)) return i;
    const end = wroteHeaderEnd(lines, i);
    if (end >= 0 && !interleaved[end + 1]) return i;
  }
  return -1;
}

function dropTrailingBlank(lines: string[]): void {
  while (lines.length > 0 && isBlank(lines[lines.length - 1])) lines.pop();
}

/** Drops a trailing block of ">" lines and the attribution right above it; true if it did. */
function dropTrailingQuote(lines: string[]): boolean {
  let start = lines.length;
  let quoted = false;
  while (start > 0) {
    const line = lines[start - 1];
    if (isQuoted(line)) quoted = true;
    else if (!isBlank(line)) break;
    start--;
  }
  if (!quoted) return false;
  lines.length = start;
  dropTrailingBlank(lines);
  const last = lines.length - 1;
  if (last >= 0) {
    const headerStart = wroteHeaderStartingBefore(lines, last);
    if (headerStart >= 0) lines.length = headerStart;
    else if (isLooseAttribution(lines[last])) lines.length = last;
    dropTrailingBlank(lines);
  }
  return true;
}

/** Drops a signature after "-- " (or a lone "--" near the end) with no ">" line below it; true if it did. */
function dropSignature(lines: string[]): boolean {
  let quotedBelow = false;
  let cut = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i];
    if (isQuoted(line)) quotedBelow = true;
    if (quotedBelow) break;
    const strict = line === '-- ';
    const loose = line.trim() === '--' && lines.length - 1 - i <= MAX_LOOSE_SIGNATURE_LINES;
    // the topmost delimiter wins: all below it is signature
    if (strict || loose) cut = i;
  }
  if (cut < 0) return false;
  lines.length = cut;
  dropTrailingBlank(lines);
  return true;
}

function isMobileFooter(line: string): boolean {
  if (line.length > MAX_FOOTER_CHARS) return false;
  const s = normalised(line);
  return MOBILE_FOOTERS.some((re) => re.test(s));
}

/** Drops "Sent from my iPhone" and the like from the end; true if it did. */
function dropMobileFooter(lines: string[]): boolean {
  let dropped = false;
  while (lines.length > 0 && isMobileFooter(lines[lines.length - 1])) {
    lines.pop();
    dropTrailingBlank(lines);
    dropped = true;
  }
  return dropped;
}

/** The new text of a reply: the quoted history and the signature cut off. */
export function trimReply(text: string): TrimmedReply {
  const whole = String(text).replace(/\r\n?/g, '\n');
  const lines = whole.split('\n');
  let quoted = false;
  let signature = false;

  const cut = historyStart(lines);
  if (cut >= 0) {
    lines.length = cut;
    quoted = true;
  }
  dropTrailingBlank(lines);

  // each step can uncover another: a quote above a signature, a footer above a quote
  for (let round = 0; round < 4; round++) {
    let changed = false;
    if (dropTrailingQuote(lines)) changed = quoted = true;
    if (dropSignature(lines)) changed = signature = true;
    if (dropMobileFooter(lines)) changed = signature = true;
    if (!changed) break;
  }

  let first = 0;
  while (first < lines.length && isBlank(lines[first])) first++;
  const result = lines.slice(first).join('\n').trimEnd();
  if (result === '') return { text: whole.trim(), quoted: false, signature: false };
  return { text: result, quoted, signature };
}
