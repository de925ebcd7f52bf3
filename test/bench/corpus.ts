import MailComposer from 'nodemailer/lib/mail-composer';

/**
 * A reproducible corpus of realistic mail to the helpdesk: text + HTML, RFC 2047 subjects in
 * several charsets, a few large attachments, and replies that name earlier mail only through
 * References / In-Reply-To (no ticket tag: which ticket they belong to is for helpgate to find).
 */

export interface BenchMail {
  index: number;
  messageId: string;
  /** Envelope sender. */
  from: string;
  /** Index of the mail this one answers, or null for a new conversation. */
  parent: number | null;
  charset: string;
  attachmentBytes: number;
  /** Ready for DATA: CRLF line ends, dot-stuffed, terminated by ".\r\n". */
  data: Buffer;
  size: number;
}

export interface CorpusOptions {
  count: number;
  helpdesk: string;
  /** Share of mails with a large attachment. */
  attachmentShare?: number;
  attachmentBytes?: number;
  /** Share of mails that are replies to earlier ones. */
  replyShare?: number;
  seed?: number;
}

/** mulberry32: small, fast, seedable, good enough to vary a corpus. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Windows-1252 differs from ISO-8859-1 in 0x80–0x9F: typographic quotes, dashes, €. */
const CP1252_EXTRA: Record<string, number> = { '€': 0x80, '‚': 0x82, '„': 0x84, '…': 0x85, '‘': 0x91, '’': 0x92, '“': 0x93, '”': 0x94, '–': 0x96, '—': 0x97, '™': 0x99 };

function singleByte(text: string, charset: 'ISO-8859-1' | 'Windows-1252'): Buffer {
  return Buffer.from(
    [...text].map((ch) => {
      if (charset === 'Windows-1252' && CP1252_EXTRA[ch] !== undefined) return CP1252_EXTRA[ch]!;
      const code = ch.charCodeAt(0);
      if (code > 0xff || (code >= 0x80 && code < 0xa0)) throw new Error(`"${ch}" is not in ${charset}`);
      return code;
    }),
  );
}

/** RFC 2047 Q-encoded words, split so that each stays within 75 characters. */
function qWords(bytes: Buffer, charset: string): string {
  const prefix = `=?${charset}?Q?`;
  const words: string[] = [];
  let cur = '';
  for (const b of bytes) {
    const ch = b === 0x20 ? '_' : /[A-Za-z0-9!*+\-/]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
    if (prefix.length + cur.length + ch.length + 2 > 75) {
      words.push(`${prefix}${cur}?=`);
      cur = '';
    }
    cur += ch;
  }
  words.push(`${prefix}${cur}?=`);
  return words.join('\r\n ');
}

interface SubjectSpec {
  charset: string;
  text: string;
  /** Pre-encoded header value, when nodemailer's own UTF-8 encoding is not what we want. */
  encoded?: string;
}

const UTF8_SUBJECTS = [
  'Upload of CT series stops at 50 % — “urgent”',
  'Zugriff verweigert auf Datensatz „Müller-Lüdenscheidt“',
  'Échec du téléchargement des images IRM',
  'Пароль не принимается после сброса',
  'Cannot log in to the dashboard',
  'Federated search returns no results for “lung nodules”',
  'Question about the data sharing agreement',
  'ETL job failed: DICOM tag (0010,0010) missing',
];
const LATIN1_SUBJECTS = ['Problème d’accès à la plateforme'.replace('’', "'"), 'Größe der Datei überschritten', 'Petición de acceso al catálogo', 'Données anonymisées incomplètes'];
const CP1252_SUBJECTS = ['Invoice “Q3” – access fee €120', 'Dataset „Brustkrebs“ – Fehler…', 'Can’t open the viewer — “timeout”'];
/** ISO-2022-JP is stateful (escape sequences), so these are encoded once, by hand, with the text they decode to. */
const JIS_SUBJECTS: SubjectSpec[] = [
  { charset: 'ISO-2022-JP', text: 'お問い合わせ: データのアップロード', encoded: '=?ISO-2022-JP?B?GyRCJCpMZCQkOWckbyQ7GyhCOiAbJEIlRyE8JT8kTiUiJUMlVyVtITwlSRsoQg==?=' },
  { charset: 'ISO-2022-JP', text: 'ログインできません', encoded: '=?ISO-2022-JP?B?GyRCJW0lMCUkJXMkRyQtJF4kOyRzGyhC?=' },
  { charset: 'ISO-2022-JP', text: '画像が表示されない', encoded: '=?ISO-2022-JP?B?GyRCMmhBfCQsST08KCQ1JGwkSiQkGyhC?=' },
];

function pickSubject(rand: () => number): SubjectSpec {
  const r = rand();
  const pick = <T>(list: T[]): T => list[Math.floor(rand() * list.length)]!;
  if (r < 0.55) return { charset: 'UTF-8', text: pick(UTF8_SUBJECTS) };
  if (r < 0.7) {
    const text = pick(LATIN1_SUBJECTS);
    return { charset: 'ISO-8859-1', text, encoded: qWords(singleByte(text, 'ISO-8859-1'), 'ISO-8859-1') };
  }
  if (r < 0.85) {
    const text = pick(CP1252_SUBJECTS);
    return { charset: 'Windows-1252', text, encoded: qWords(singleByte(text, 'Windows-1252'), 'Windows-1252') };
  }
  return pick(JIS_SUBJECTS);
}

const WORDS =
  'the upload of our imaging series stops after a while and the portal shows an error we tried again with a smaller batch but the same happens could you please check the logs on your side our node is configured as described in the documentation and the certificates were renewed last week thank you for your help best regards'.split(
    ' ',
  );
const NAMES = ['Ada Lovelace', 'Jürgen Müller', 'Élodie Dupont', 'Søren Kierkegaard', 'Łukasz Nowak', '山田 太郎', 'María José García', 'Chen Wei', 'Oluwaseun Adeyemi', 'Ingrid Bergström'];
const DOMAINS = ['uni-heidelberg.example', 'hospital-lyon.example', 'imaging-centre.example', 'research.example.org', 'clinic-krakow.example'];

function paragraph(rand: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(rand() * WORDS.length)]!);
  const s = out.join(' ');
  return `${s[0]!.toUpperCase()}${s.slice(1)}.`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Dot-stuffs a CRLF message and appends the end-of-data marker. */
export function dataFor(raw: Buffer): Buffer {
  let s = raw.toString('latin1').replace(/\r?\n/g, '\r\n');
  if (!s.endsWith('\r\n')) s += '\r\n';
  s = s.replace(/(^|\r\n)\./g, '$1..');
  return Buffer.from(`${s}.\r\n`, 'latin1');
}

export async function buildCorpus(opts: CorpusOptions): Promise<BenchMail[]> {
  const rand = prng(opts.seed ?? 20240611);
  const attachmentShare = opts.attachmentShare ?? 0.05;
  const attachmentBytes = opts.attachmentBytes ?? 200 * 1024;
  const replyShare = opts.replyShare ?? 1 / 3;
  const senders = Math.max(10, Math.ceil(opts.count / 5));
  const mails: BenchMail[] = [];
  const meta: { subject: SubjectSpec; from: { name: string; address: string }; text: string; references: string[] }[] = [];
  const baseDate = Date.UTC(2024, 5, 1, 8, 0, 0);
  // New conversations go round-robin over the senders: a handful each, well under the
  // acknowledgement rate limit, so every new ticket is acknowledged.
  let conversations = 0;

  for (let i = 0; i < opts.count; i++) {
    // Replies answer a mail sent a while before, as people do; the first few mails start threads.
    const isReply = i >= 20 && rand() < replyShare;
    const parent = isReply ? Math.floor(rand() * (i - 10)) : null;
    const p = parent === null ? null : meta[parent]!;
    const senderNo = p ? 0 : conversations++ % senders;
    const from = p ? p.from : { name: NAMES[senderNo % NAMES.length]!, address: `user${senderNo}@${DOMAINS[senderNo % DOMAINS.length]}` };
    const subject = p ? p.subject : pickSubject(rand);
    const domain = from.address.split('@')[1]!;
    const messageId = `<bench.${i}.${Math.floor(rand() * 1e9).toString(36)}@${domain}>`;
    const paragraphs = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => paragraph(rand, 20 + Math.floor(rand() * 60)));
    let text = `Hello,\n\n${paragraphs.join('\n\n')}\n\n${from.name}\n`;
    if (p) text += `\nOn ${new Date(baseDate + parent! * 60_000).toUTCString()} ${p.from.name} wrote:\n${p.text.split('\n').map((l) => `> ${l}`).join('\n')}\n`;
    const html = `<html><body>${text
      .split('\n\n')
      .map((block) => `<p>${escapeHtml(block).replace(/\n/g, '<br>')}</p>`)
      .join('\n')}</body></html>`;
    const references = p ? [...p.references, mails[parent!]!.messageId].slice(-10) : [];
    const withAttachment = rand() < attachmentShare;
    const attachment = withAttachment ? Buffer.from(Array.from({ length: attachmentBytes }, () => Math.floor(rand() * 256))) : null;
    const subjectLine = `${p ? 'Re: ' : ''}${subject.encoded ?? subject.text}`;

    const composer = new MailComposer({
      from,
      to: opts.helpdesk,
      cc: rand() < 0.1 ? `colleague.of.${from.address.split('@')[0]}@${domain}` : undefined,
      ...(subject.encoded ? { headers: { Subject: { prepared: true, value: subjectLine } } } : { subject: subjectLine }),
      messageId,
      date: new Date(baseDate + i * 60_000),
      inReplyTo: p ? mails[parent!]!.messageId : undefined,
      references: references.length ? references : undefined,
      text,
      html,
      attachments: attachment ? [{ filename: `series-${i}.dcm`, content: attachment, contentType: 'application/dicom' }] : [],
    });
    const raw = await composer.compile().build();
    meta.push({ subject, from, text, references });
    mails.push({
      index: i,
      messageId,
      from: from.address,
      parent,
      charset: subject.charset,
      attachmentBytes: attachment?.length ?? 0,
      data: dataFor(raw),
      size: raw.length,
    });
  }
  return mails;
}
