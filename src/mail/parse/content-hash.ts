import { createHash } from 'node:crypto';

interface Addr {
  address: string;
  name: string;
}

/** The parsed fields the hash covers (a ParsedMessage has them all). */
export interface HashedContent {
  from: Addr | null;
  to: Addr[];
  cc: Addr[];
  subject: string;
  date: string | null;
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  text: string;
  html: string | null;
  attachments: { sha256: string; filename: string | null }[];
}

/**
 * What makes two deliveries "the same mail": who wrote it to whom, when, about what, what it
 * says and which files it carries, as parsed. Trace headers (Received, Return-Path,
 * Delivered-To, Authentication-Results, ARC, a relay's added DKIM signature, X-… from scanners)
 * and the transfer encoding are left out, so the same message that reaches us twice (SMTP and
 * IMAP, two MX hops, a re-encoding relay) hashes the same, while a different message that reuses
 * a Message-ID (another sender, other words, another file) does not.
 */
export function contentHash(m: HashedContent): string {
  const who = (a: Addr | null) => (a ? `${a.address} ${a.name}` : '');
  const lines = (s: string | null) => (s ?? '').replace(/\r\n?/g, '\n').replace(/[ \t]+$/gm, '').trim();
  const parts = [
    who(m.from),
    m.to.map(who).join(','),
    m.cc.map(who).join(','),
    m.subject,
    m.date ?? '',
    m.messageId ?? '',
    m.inReplyTo ?? '',
    m.references.join(' '),
    lines(m.text),
    lines(m.html),
    ...m.attachments.map((a) => `${a.sha256} ${a.filename ?? ''}`),
  ];
  const h = createHash('sha256');
  for (const p of parts) h.update(`${p.length}:${p}\n`);
  return h.digest('hex');
}
