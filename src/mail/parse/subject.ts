/**
 * Subject tags: "[CIE#100001]". Found anywhere in the subject, case-insensitive, with our
 * prefix only, so other systems' tags ("[Ticket#123]", "GGUS-Ticket-ID: #123", "[ABC#1]")
 * are never taken for ours.
 */

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const tagPatterns = new Map<string, RegExp>();
function tagPattern(prefix: string): RegExp {
  let re = tagPatterns.get(prefix);
  if (!re) {
    re = new RegExp(`\\[\\s*${escapeRegExp(prefix)}\\s*#\\s*(\\d{1,15})\\s*\\]`, 'gi');
    tagPatterns.set(prefix, re);
  }
  re.lastIndex = 0;
  return re;
}

export function formatTag(prefix: string, number: number): string {
  return `[${prefix}#${number}]`;
}

/** The ticket numbers named by our tag in a subject, in order of appearance. */
export function findTicketTags(subject: string, prefix: string): number[] {
  const out: number[] = [];
  for (const m of subject.matchAll(tagPattern(prefix))) {
    const n = Number(m[1]);
    if (Number.isSafeInteger(n) && !out.includes(n)) out.push(n);
  }
  return out;
}

/**
 * Reply and forward prefixes of the common mail clients and languages:
 * Re, RE[2], Re(3), AW (de), SV (nordic), VS (fi), Antw (nl), Fwd, Fw, WG (de), TR (fr), RIF/R (it), Ref.
 */
const REPLY_PREFIX = /^\s*(?:re|aw|sv|vs|antw|fwd?|wg|tr|rif|ref|r)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*/i;

/** The subject without reply/forward prefixes and without our tag, whitespace folded. */
export function cleanSubject(subject: string, prefix: string): string {
  let s = subject.replace(tagPattern(prefix), ' ').replace(/\s+/g, ' ').trim();
  for (;;) {
    const next = s.replace(REPLY_PREFIX, '').trim();
    if (next === s) break;
    s = next;
  }
  return s;
}
