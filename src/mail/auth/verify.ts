import { authenticate } from 'mailauth';
import type { DnsResolver } from './dns.ts';
import { trustedHopVerdict, type HopVerdict } from './auth-results.ts';

/** Where and how a message reached us: what the intake stored with its bytes. */
export interface Arrival {
  /** MAIL FROM; '' for the null reverse-path; null when unknown (a pipe without -f, IMAP). */
  mailFrom: string | null;
  /** The SMTP client's address; null for mail read over IMAP or received through the pipe. */
  clientIp: string | null;
  helo: string | null;
}

/**
 * The outcome of checking one message: each mechanism's result as mailauth (or the trusted
 * hop) gave it, and the one thing policy needs: the From: domain that DMARC authenticated.
 */
export interface MailVerdict {
  spf: { result: string; domain: string | null };
  dkim: { result: string; domains: string[] };
  dmarc: { result: string; domain: string | null; policy: string | null };
  arc: { result: string };
  /** The message's From: address as mailauth read it (one address, or null). */
  headerFrom: string | null;
  /** The From: domain for which DMARC passed (ours or the trusted hop's check), else null. */
  alignedDomain: string | null;
  /** The trusted hop's Authentication-Results, when the message carried one. */
  hop: HopVerdict | null;
}

export interface VerifyOptions {
  resolver: DnsResolver;
  /** Our host name, as written in the results (the helpdesk's domain). */
  mta: string;
  /** authserv-ids whose Authentication-Results count (TRUSTED_AUTHSERV_IDS), lower case. */
  trustedAuthservIds: readonly string[];
  /** Bound on all look-ups of one message together (SPF alone may make ten); past it every look-up is a timeout. */
  budgetMs: number;
}

/** The resolver, failing fast (ETIMEOUT) once the message's DNS budget is spent. */
function withBudget(resolver: DnsResolver, budgetMs: number): DnsResolver {
  const until = Date.now() + budgetMs;
  return (name, rrtype) =>
    Date.now() >= until ? Promise.reject(Object.assign(new Error(`DNS ${rrtype} ${name}: the message's DNS time is spent`), { code: 'ETIMEOUT' })) : resolver(name, rrtype);
}

const domainOf = (address: string | null | undefined): string | null => {
  const at = address?.lastIndexOf('@') ?? -1;
  return at >= 0 ? address!.slice(at + 1).trim().toLowerCase() || null : null;
};

/**
 * Checks a message with mailauth: SPF of the envelope sender for the client IP and HELO, every
 * DKIM signature, DMARC alignment of the From: domain, and the ARC chain; and reads the
 * verdict of a trusted hop. No exception for DNS trouble: a look-up that fails or times out
 * yields temperror, which is never a pass.
 */
export async function verifyMessage(raw: Buffer, arrival: Arrival, opts: VerifyOptions): Promise<MailVerdict> {
  const result = await authenticate(raw, {
    // Without MAIL FROM (pipe without -f) mailauth falls back to the Return-Path header.
    ...(arrival.mailFrom !== null ? { sender: arrival.mailFrom } : {}),
    ...(arrival.clientIp ? { ip: arrival.clientIp } : {}),
    ...(arrival.helo ? { helo: arrival.helo } : {}),
    mta: opts.mta,
    resolver: withBudget(opts.resolver, opts.budgetMs),
    disableBimi: true,
  });
  const headerFrom = result.dkim.headerFrom?.length === 1 ? result.dkim.headerFrom[0]!.toLowerCase() : null;
  const signatures = result.dkim.results ?? [];
  const passing = signatures.filter((s) => s.status.result === 'pass');
  const dmarc = result.dmarc;
  const lines = (result.dkim.headers?.parsed ?? []).filter((h) => h.key === 'authentication-results').map((h) => String(h.line));
  const hop = trustedHopVerdict(lines, opts.trustedAuthservIds);
  const fromDomain = domainOf(headerFrom);
  const localPass = !!dmarc && dmarc.status.result === 'pass' && !!fromDomain;
  const hopPass = !!hop && hop.dmarc === 'pass' && !!fromDomain && hop.dmarcDomain === fromDomain;
  return {
    // Without a client IP (IMAP, pipe) there is nothing to check SPF against.
    spf: arrival.clientIp && result.spf ? { result: result.spf.status.result, domain: result.spf.domain ?? null } : { result: 'none', domain: null },
    dkim: {
      result: passing.length ? 'pass' : (signatures[0]?.status.result ?? 'none'),
      domains: [...new Set(passing.map((s) => (s.signingDomain ?? '').toLowerCase()).filter(Boolean))],
    },
    dmarc: { result: dmarc ? dmarc.status.result : 'none', domain: fromDomain, policy: dmarc ? (dmarc.policy ?? dmarc.p ?? null) : null },
    arc: { result: result.arc ? result.arc.status.result : 'none' },
    headerFrom,
    alignedDomain: localPass || hopPass ? fromDomain : null,
    hop,
  };
}
