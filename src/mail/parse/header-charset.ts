import chardet from 'chardet';
import iconv from 'iconv-lite';

/**
 * Raw 8-bit header bytes in a legacy charset (a GBK or Shift_JIS Subject, a Big5 display name),
 * sent without RFC 2047 encoded-words and without saying which charset they are in. mailparser
 * reads every raw header as UTF-8, so such bytes become U+FFFD. Before parsing, each header line
 * of the top-level block that is not valid UTF-8 is decoded with the charset the message names
 * for its body (when it is a multi-byte one and fits), else the one chardet finds in all those
 * lines together, and written back as UTF-8 (as RFC 6532 mail would carry it). Valid UTF-8
 * headers and encoded-words (plain ASCII) are left exactly as they are.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true });

function isUtf8(bytes: Buffer): boolean {
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const has8bit = (bytes: Buffer) => bytes.some((b) => b >= 0x80);

/** Offset just past the top-level header block's last line (before the empty line), or the end. */
export function headerBlockEnd(raw: Buffer): number {
  for (let nl = raw.indexOf(0x0a); nl >= 0; nl = raw.indexOf(0x0a, nl + 1)) {
    const next = raw[nl + 1] === 0x0d ? nl + 2 : nl + 1;
    if (raw[next] === 0x0a) return nl + 1;
  }
  return raw.length;
}

/** The raw message with undeclared 8-bit header lines re-encoded as UTF-8 (the same Buffer when none). */
export function transcodeRawHeaders(raw: Buffer): Buffer {
  const end = headerBlockEnd(raw);
  const head = raw.subarray(0, end);
  if (!has8bit(head) || isUtf8(head)) return raw;
  const lines: Buffer[] = [];
  for (let start = 0; start < head.length; ) {
    const nl = head.indexOf(0x0a, start);
    const stop = nl < 0 ? head.length : nl + 1;
    lines.push(head.subarray(start, stop));
    start = stop;
  }
  const foreign = lines.filter((l) => has8bit(l) && !isUtf8(l));
  const charset = headerCharset(Buffer.concat(foreign), declaredCharset(raw));
  const out = lines.map((l) => (foreign.includes(l) ? Buffer.from(iconv.decode(l, charset), 'utf8') : l));
  return Buffer.concat([...out, raw.subarray(end)]);
}

// Charsets whose byte sequences are checked by decoding: a wrong guess shows as U+FFFD. A
// single-byte charset decodes anything, so it is only taken on chardet's word.
const MULTI_BYTE = /^(gb|big5|shift|sjis|x-sjis|euc|cp9(32|36|49|50)|windows-9(32|36|49|50)|ks_c|ksc|hz|uhc|ms9)/i;

function headerCharset(sample: Buffer, declared: string | null): string {
  const fits = (cs: string) => iconv.encodingExists(cs) && !iconv.decode(sample, cs).includes('\ufffd');
  if (declared && MULTI_BYTE.test(declared) && fits(declared)) return declared;
  const detected = chardet.analyse(sample).map((m) => m.name).filter((n) => !/^(utf-|iso-2022)/i.test(n));
  for (const cs of detected) if (fits(cs)) return cs;
  if (declared && fits(declared)) return declared;
  return 'windows-1252';
}

/** The first charset a Content-Type in the message names, other than UTF-8 and ASCII. */
function declaredCharset(raw: Buffer): string | null {
  const text = raw.subarray(0, 256 * 1024).toString('latin1');
  for (const m of text.matchAll(/charset\s*=\s*"?([A-Za-z0-9_.:+-]+)/gi)) {
    const cs = m[1]!;
    if (!/^(utf-?8|us-ascii|ascii)$/i.test(cs) && iconv.encodingExists(cs)) return cs;
  }
  return null;
}
