import { Resolver } from 'node:dns/promises';

/**
 * How sender verification asks DNS: like node:dns's resolve(name, rrtype) (TXT answers are
 * arrays of strings). A failed look-up rejects with the resolver's code (ENOTFOUND, ENODATA,
 * ETIMEOUT, …): mailauth turns "no such record" into none and everything else into temperror.
 */
export type DnsResolver = (name: string, rrtype: string) => Promise<unknown>;

/** A look-up that gave no answer in time; mailauth reads the code as a temporary error. */
class DnsTimeout extends Error {
  readonly code = 'ETIMEOUT';
  constructor(name: string, rrtype: string, ms: number) {
    super(`DNS ${rrtype} ${name}: no answer within ${ms} ms`);
  }
}

/**
 * The system's resolvers (/etc/resolv.conf), each look-up bounded: one retry inside the
 * timeout, then ETIMEOUT. A slow or dead DNS server thus delays a mail by a bounded time and
 * yields temperror (never a pass), instead of holding an ingest worker for minutes.
 */
export function systemResolver(timeoutMs: number): DnsResolver {
  const resolver = new Resolver({ timeout: Math.max(1, Math.floor(timeoutMs / 2)), tries: 2 });
  return (name, rrtype) => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DnsTimeout(name, rrtype, timeoutMs)), timeoutMs);
    });
    return Promise.race([resolver.resolve(name, rrtype), deadline]).finally(() => clearTimeout(timer));
  };
}
