/**
 * uuencoded files inside a text body ("begin 644 name" … "end"), as old mailers and some
 * scanners and lab instruments still send them. Decoded here: the format is a few lines of
 * arithmetic, and no maintained npm package for it is among our dependencies.
 */

export interface UuFile {
  filename: string;
  content: Buffer;
}

// "begin <mode> <name>", the encoded lines, an optional "`" (or space) line, then "end".
const BLOCK = /^begin[ \t]+[0-7]{3,4}[ \t]+([^\r\n]+?)[ \t]*\r?\n((?:[\x20-\x60]+[ \t]*\r?\n)*?)(?:[`\x20][ \t]*\r?\n)?end[ \t]*(?:\r?\n|$)/gm;

/** The text without its uuencoded blocks, and the files they held. */
export function extractUuencoded(text: string): { text: string; files: UuFile[] } {
  if (!text.includes('begin ')) return { text, files: [] };
  const files: UuFile[] = [];
  const rest = text.replace(BLOCK, (whole, name: string, body: string) => {
    const content = uudecode(body);
    if (!content) return whole;
    files.push({ filename: name.trim(), content });
    return '';
  });
  // The block's place in the text leaves no gap wider than one empty line.
  return files.length ? { text: rest.replace(/\n{3,}/g, '\n\n'), files } : { text, files };
}

/** Decodes uuencoded lines; null when a line's length byte does not fit its characters. */
function uudecode(body: string): Buffer | null {
  const out: number[] = [];
  for (const line of body.split(/\r?\n/)) {
    if (!line) continue;
    const n = (line.charCodeAt(0) - 32) & 0x3f;
    if (n === 0) continue;
    const chars = line.slice(1);
    if (Math.ceil(n / 3) * 4 > chars.replace(/\s+$/, '').length + 2) return null;
    const c = (i: number) => ((chars.charCodeAt(i) || 32) - 32) & 0x3f;
    const bytes: number[] = [];
    for (let i = 0; bytes.length < n; i += 4) {
      bytes.push(((c(i) << 2) | (c(i + 1) >> 4)) & 0xff, ((c(i + 1) << 4) | (c(i + 2) >> 2)) & 0xff, ((c(i + 2) << 6) | c(i + 3)) & 0xff);
    }
    out.push(...bytes.slice(0, n));
  }
  return out.length ? Buffer.from(out) : null;
}
