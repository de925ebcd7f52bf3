import iconv from 'iconv-lite';

/**
 * Reads a TNEF stream (winmail.dat, application/ms-tnef): the files Outlook packed into it and
 * its plain or HTML body. RTF bodies (PR_RTF_COMPRESSED) are not decoded: the original
 * winmail.dat stays attached for them.
 *
 * Written here rather than calling node-tnef 1.4 (the package the field offers on npm), because
 * loading that package replaces String.prototype.replaceAll for the whole process with a
 * RegExp-based version ('a.b'.replaceAll('.', '-') gives '---', a backslash throws), its
 * parseBuffer logs every call to stdout through its own bunyan logger (which would corrupt
 * `helpgate parse` output and our structured logs), copies the rest of the buffer into a JS
 * array for every attribute (4 s for a broken 67 KB file), and keeps only the 8.3 title of an
 * attachment, not its long file name. The format is small and documented ([MS-OXTNEF]).
 */

export interface TnefFile {
  filename: string | null;
  /** The MIME type Outlook recorded (PR_ATTACH_MIME_TAG), if any. */
  contentType: string | null;
  content: Buffer;
}

export interface TnefContent {
  attachments: TnefFile[];
  text: string | null;
  html: string | null;
}

const SIGNATURE = 0x223e9f78;
const LVL_ATTACHMENT = 0x02;

// TNEF attribute ids (low 16 bits of the attribute tag)
const ATT_BODY = 0x800c;
const ATT_ATTACH_DATA = 0x800f;
const ATT_ATTACH_TITLE = 0x8010;
const ATT_ATTACH_REND_DATA = 0x9002;
const ATT_MAPI_PROPS = 0x9003;
const ATT_ATTACHMENT = 0x9005;
const ATT_OEM_CODEPAGE = 0x9007;

// MAPI property ids and types
const PR_BODY = 0x1000;
const PR_BODY_HTML = 0x1013;
const PR_ATTACH_DATA = 0x3701;
const PR_ATTACH_FILENAME = 0x3704;
const PR_ATTACH_LONG_FILENAME = 0x3707;
const PR_ATTACH_MIME_TAG = 0x370e;
const PT_STRING8 = 0x001e;
const PT_UNICODE = 0x001f;
const PT_BINARY = 0x0102;
const PT_OBJECT = 0x000d;
const MV_FLAG = 0x1000;
const FIXED_SIZE: Record<number, number> = { 0x0002: 4, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000a: 4, 0x000b: 4, 0x0014: 8, 0x0040: 8, 0x0048: 16 };

interface MapiProp {
  id: number;
  type: number;
  value: Buffer;
}

export function isTnef(data: Buffer): boolean {
  return data.length >= 6 && data.readUInt32LE(0) === SIGNATURE;
}

/** Unpacks a TNEF stream; null when the bytes are not TNEF. Damaged data ends the walk early. */
export function readTnef(data: Buffer): TnefContent | null {
  if (!isTnef(data)) return null;
  let codepage = 'windows-1252';
  const files: { title: string | null; props: MapiProp[]; data: Buffer | null }[] = [];
  let messageProps: MapiProp[] = [];
  let attBody: Buffer | null = null;
  let offset = 6;
  // level (1) + tag (4) + length (4) + data + checksum (2)
  while (offset + 9 <= data.length) {
    const level = data.readUInt8(offset);
    const id = data.readUInt16LE(offset + 1);
    const length = data.readUInt32LE(offset + 5);
    const start = offset + 9;
    if (start + length > data.length) break;
    const value = data.subarray(start, start + length);
    offset = start + length + 2;
    if (id === ATT_OEM_CODEPAGE && length >= 4) {
      const cp = value.readUInt32LE(0);
      if (iconv.encodingExists(`cp${cp}`)) codepage = `cp${cp}`;
    } else if (id === ATT_ATTACH_REND_DATA) {
      files.push({ title: null, props: [], data: null });
    } else if (level === LVL_ATTACHMENT && files.length) {
      const file = files[files.length - 1]!;
      if (id === ATT_ATTACH_TITLE) file.title = cString(value, codepage);
      else if (id === ATT_ATTACH_DATA) file.data = value;
      else if (id === ATT_ATTACHMENT) file.props = mapiProps(value);
    } else if (id === ATT_MAPI_PROPS) {
      messageProps = mapiProps(value);
    } else if (id === ATT_BODY) {
      attBody = value;
    }
  }

  const attachments: TnefFile[] = [];
  for (const f of files) {
    const prop = (pid: number) => f.props.find((p) => p.id === pid);
    const inProps = prop(PR_ATTACH_DATA);
    const content = f.data ?? (inProps ? (inProps.type === PT_OBJECT ? inProps.value.subarray(16) : inProps.value) : null);
    if (!content) continue;
    const name = propString(prop(PR_ATTACH_LONG_FILENAME), codepage) || propString(prop(PR_ATTACH_FILENAME), codepage) || f.title;
    attachments.push({ filename: name || null, contentType: propString(prop(PR_ATTACH_MIME_TAG), codepage) || null, content });
  }
  const html = messageProps.find((p) => p.id === PR_BODY_HTML);
  const body = messageProps.find((p) => p.id === PR_BODY);
  return {
    attachments,
    text: body ? propString(body, codepage) : attBody ? cString(attBody, codepage) : null,
    html: html ? (html.type === PT_BINARY ? stripNul(html.value.toString('utf8')) : propString(html, codepage)) : null,
  };
}

/** An attMAPIProps / attAttachment block: a count, then each property (first value only). */
function mapiProps(data: Buffer): MapiProp[] {
  const out: MapiProp[] = [];
  if (data.length < 4) return out;
  const count = data.readUInt32LE(0);
  let o = 4;
  const need = (n: number) => o + n <= data.length;
  for (let i = 0; i < count && need(4); i++) {
    const rawType = data.readUInt16LE(o);
    const id = data.readUInt16LE(o + 2);
    o += 4;
    if (id >= 0x8000) {
      // A named property: GUID, then a number or a UTF-16 name.
      if (!need(20)) break;
      const kind = data.readUInt32LE(o + 16);
      o += 20;
      if (kind === 0) o += 4;
      else {
        if (!need(4)) break;
        const n = data.readUInt32LE(o);
        o += 4 + n + pad(n);
      }
    }
    const type = rawType & ~MV_FLAG;
    const variable = type === PT_STRING8 || type === PT_UNICODE || type === PT_BINARY || type === PT_OBJECT;
    let values = 1;
    if (rawType & MV_FLAG || variable) {
      if (!need(4)) break;
      values = data.readUInt32LE(o);
      o += 4;
    }
    let first: Buffer | null = null;
    for (let v = 0; v < values; v++) {
      let size = FIXED_SIZE[type];
      if (variable) {
        if (!need(4)) return out;
        size = data.readUInt32LE(o);
        o += 4;
      }
      // An unknown fixed type: its size cannot be known, so nothing after it can be read.
      if (size === undefined || !need(size)) return out;
      first ??= data.subarray(o, o + size);
      o += size + pad(size);
    }
    if (first) out.push({ id, type, value: first });
  }
  return out;
}

const pad = (n: number) => (4 - (n % 4)) % 4;
const stripNul = (s: string) => s.replace(/\0+$/, '');
const cString = (b: Buffer, codepage: string) => stripNul(iconv.decode(b, codepage));

function propString(p: MapiProp | undefined, codepage: string): string {
  if (!p) return '';
  if (p.type === PT_UNICODE) return stripNul(p.value.toString('utf16le'));
  if (p.type === PT_STRING8) return cString(p.value, codepage);
  return '';
}
