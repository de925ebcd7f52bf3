import type { DnsResolver } from '../../src/mail/auth/dns.ts';

/**
 * DNS from a table, for sender verification in tests: TXT records by name (one string per
 * record). Any other name or type answers ENOTFOUND, as a name without records does; a name
 * mapped to 'timeout' answers ETIMEOUT, as an unreachable server does.
 */
export function fixtureResolver(txt: Record<string, string | string[] | 'timeout'>): DnsResolver & { asked: string[] } {
  const asked: string[] = [];
  const table = new Map(Object.entries(txt).map(([k, v]) => [k.toLowerCase().replace(/\.$/, ''), v]));
  const resolver = async (name: string, rrtype: string): Promise<unknown> => {
    const key = name.toLowerCase().replace(/\.$/, '');
    asked.push(`${rrtype} ${key}`);
    const entry = table.get(key);
    if (entry === 'timeout') throw Object.assign(new Error(`DNS ${rrtype} ${name}: timeout`), { code: 'ETIMEOUT' });
    if (rrtype === 'TXT' && entry !== undefined) return [entry].flat().map((record) => [record]);
    throw Object.assign(new Error(`DNS ${rrtype} ${name}: not found`), { code: 'ENOTFOUND' });
  };
  return Object.assign(resolver, { asked });
}
