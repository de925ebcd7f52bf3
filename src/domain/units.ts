import type { SupportUnit } from '../config/schema.ts';

/** The Support Units of the configuration, and who belongs where. */
export class UnitDirectory {
  private readonly byKey = new Map<string, SupportUnit>();
  private readonly memberOf = new Map<string, string[]>();

  constructor(
    units: readonly SupportUnit[],
    readonly entryKey: string,
  ) {
    for (const u of units) {
      this.byKey.set(u.key, u);
      for (const m of u.members) this.memberOf.set(m, [...(this.memberOf.get(m) ?? []), u.key]);
    }
  }

  get(key: string): SupportUnit | undefined {
    return this.byKey.get(key);
  }

  get entry(): SupportUnit {
    return this.byKey.get(this.entryKey)!;
  }

  all(): SupportUnit[] {
    return [...this.byKey.values()];
  }

  /** Agents are the members of any unit. */
  isAgent(address: string): boolean {
    return this.memberOf.has(address.toLowerCase());
  }

  members(key: string): string[] {
    return [...(this.byKey.get(key)?.members ?? [])];
  }

  addresses(): string[] {
    return this.all().map((u) => u.address);
  }
}
