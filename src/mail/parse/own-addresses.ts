/**
 * Our own addresses: the helpdesk address, the Support Units' addresses
 * and sub-addresses of them ("help+anything@"). The SMTP intake accepts only these, so helpgate is
 * never an open relay.
 */
export class OwnAddresses {
  private readonly locals = new Map<string, Set<string>>();

  constructor(addresses: readonly string[]) {
    for (const a of addresses) {
      const [local, domain] = splitAddress(a);
      if (!this.locals.has(domain)) this.locals.set(domain, new Set());
      this.locals.get(domain)!.add(local);
    }
  }

  has(address: string): boolean {
    const [local, domain] = splitAddress(address);
    const known = this.locals.get(domain);
    if (!known || !local) return false;
    return known.has(local) || known.has(local.split('+')[0]!);
  }
}

function splitAddress(address: string): [string, string] {
  const a = address.trim().toLowerCase();
  const at = a.lastIndexOf('@');
  return at < 0 ? [a, ''] : [a.slice(0, at), a.slice(at + 1)];
}
