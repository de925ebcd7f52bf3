/** The name shown where an erased person's name was. */
export const ERASED_NAME = 'Erased person';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);
}

/**
 * Replaces one person's addresses, full names and LS AAI identifier by a pseudonym in what others
 * keep (tickets, other people's articles, the audit log, outbound mail records). A name is
 * replaced only as a whole name of two words or more: a first name alone is too common to
 * replace blindly in other people's text.
 */
export class Scrubber {
  private readonly addresses: Set<string>;
  private readonly pattern: RegExp | null;
  /** The pseudonym's local part: what the identifier becomes inside keys and operation ids. */
  private readonly tag: string;

  constructor(
    addresses: readonly string[],
    names: readonly string[],
    readonly sub: string | null,
    readonly pseudonym: string,
  ) {
    this.addresses = new Set(addresses.map((a) => a.toLowerCase()));
    this.tag = pseudonym.split('@')[0]!;
    const fullNames = [...new Set(names.map((n) => n.trim()).filter((n) => n.length >= 4 && /\S\s+\S/.test(n)))];
    const words = [...this.addresses, ...fullNames, ...(sub ? [sub] : [])].sort((a, b) => b.length - a.length).map(escapeRegExp);
    // Whole words only: one address must not match inside a longer one.
    this.pattern = words.length ? new RegExp(`(?<![\\w.+-])(?:${words.join('|')})(?![\\w-])`, 'gi') : null;
  }

  isTheirs(address: string | null | undefined): boolean {
    return !!address && this.addresses.has(address.toLowerCase());
  }

  /** Their addresses, full names and identifier in a text replaced (the identifier by the pseudonym's tag). */
  text(s: string): string {
    if (!this.pattern || !s) return s;
    return s.replace(this.pattern, (m) => (this.isTheirs(m) ? this.pseudonym : this.sub && m.toLowerCase() === this.sub.toLowerCase() ? this.tag : ERASED_NAME));
  }

  /** Whether a text names them (an address, a full name or the identifier). */
  mentions(s: string): boolean {
    if (!this.pattern || !s) return false;
    this.pattern.lastIndex = 0;
    return this.pattern.test(s);
  }

  /** A person ({address, name}) who is them becomes the pseudonym. */
  person<T extends { address?: string | null; name?: string | null }>(p: T): T {
    return this.isTheirs(p.address) ? { ...p, address: this.pseudonym, name: ERASED_NAME } : p;
  }

  /** A list of addresses with theirs replaced (once). */
  list(addresses: readonly string[]): string[] {
    return [...new Set(addresses.map((a) => (this.isTheirs(a) ? this.pseudonym : a)))];
  }

  /**
   * Any stored value with them replaced: strings, arrays and plain objects (a person object
   * as a whole); dates, ids and buffers as they are.
   */
  deep<T>(value: T): T {
    if (typeof value === 'string') return this.text(value) as T;
    if (Array.isArray(value)) return value.map((v) => this.deep(v)) as T;
    if (isPlainObject(value)) {
      if (typeof value.address === 'string' && this.isTheirs(value.address)) return { ...value, address: this.pseudonym, ...('name' in value ? { name: ERASED_NAME } : {}) } as T;
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.deep(v)])) as T;
    }
    return value;
  }
}

/** Whether two stored values are the same (for "write only what changed"). */
export function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
