import parseDkimHeaders from 'mailauth/lib/parse-dkim-headers.js';

/** What a trusted hop's Authentication-Results header says (RFC 8601). */
export interface HopVerdict {
  authservId: string;
  spf: string;
  dkim: string;
  /** Signing domains (header.d) of the signatures the hop found valid. */
  dkimDomains: string[];
  dmarc: string;
  /** The From: domain the hop's DMARC result is about (header.from). */
  dmarcDomain: string | null;
  arc: string;
}

type Entry = { value?: string; header?: Record<string, string>; smtp?: Record<string, string> };

const lower = (s: unknown): string => (typeof s === 'string' ? s.trim().toLowerCase() : '');

/**
 * The verdict of the topmost Authentication-Results header whose authserv-id is trusted: the
 * one our own MTA or mailbox provider added last. Every other such header (a sender can write
 * any) is ignored. The hop must remove headers claiming its own authserv-id from incoming mail
 * (RFC 8601 section 5), as Postfix milters, rspamd and the big mailbox providers do.
 *
 * The header is read with mailauth's own parser (the one it uses for ARC), which strips
 * comments and splits methods and properties.
 */
export function trustedHopVerdict(headerLines: string[], trusted: readonly string[]): HopVerdict | null {
  if (!trusted.length) return null;
  for (const line of headerLines) {
    let parsed: Record<string, unknown> & { value?: string };
    try {
      parsed = parseDkimHeaders(line.replace(/\r?\n/g, '')).parsed;
    } catch {
      continue;
    }
    // "mx.example.net 1": the authserv-id, then an optional version.
    const id = lower(parsed.value).split(/\s+/)[0] ?? '';
    if (!id || !trusted.includes(id)) continue;
    const one = (key: string): Entry | null => {
      const v = parsed[key];
      return (Array.isArray(v) ? v[0] : v) as Entry | null ?? null;
    };
    const dkims = ([] as Entry[]).concat((parsed.dkim as Entry | Entry[] | undefined) ?? []);
    const passing = dkims.filter((d) => lower(d.value) === 'pass');
    const dmarc = one('dmarc');
    return {
      authservId: id,
      spf: lower(one('spf')?.value) || 'none',
      dkim: passing.length ? 'pass' : lower(dkims[0]?.value) || 'none',
      dkimDomains: passing.map((d) => lower(d.header?.d)).filter(Boolean),
      dmarc: lower(dmarc?.value) || 'none',
      dmarcDomain: lower(dmarc?.header?.from).replace(/^.*@/, '') || null,
      arc: lower(one('arc')?.value) || 'none',
    };
  }
  return null;
}
