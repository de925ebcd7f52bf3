import type { Config } from '../config/load.ts';
import type { Store } from '../db/store.ts';
import type { Logger } from '../log/logger.ts';
import type { MailComposer } from '../mail/send/compose.ts';
import { OwnAddresses } from '../mail/parse/own-addresses.ts';
import { systemResolver, type DnsResolver } from '../mail/auth/dns.ts';
import { UnitDirectory } from './units.ts';

/** What every domain command needs; built once in main and passed down. */
export interface DomainContext {
  readonly store: Store;
  readonly config: Config;
  readonly log: Logger;
  readonly composer: MailComposer;
  readonly units: UnitDirectory;
  /** The helpdesk's and the units' addresses: never participants, never requesters. */
  readonly own: OwnAddresses;
  /** Wakes the outbox worker after mail was queued (no-op in the CLI). */
  readonly mailQueued: () => void;
  readonly now: () => Date;
  /** DNS for sender verification: the system's resolvers, or a test's fixture records. */
  readonly dns: DnsResolver;
}

export function createDomainContext(parts: Omit<DomainContext, 'units' | 'own' | 'now' | 'mailQueued' | 'dns'> & Partial<Pick<DomainContext, 'now' | 'mailQueued' | 'dns'>>): DomainContext {
  return {
    ...parts,
    dns: parts.dns ?? systemResolver(parts.config.senderAuth.dnsTimeoutMs),
    units: new UnitDirectory(parts.config.units, parts.config.entryUnit.key),
    own: ownAddresses(parts.config),
    mailQueued: parts.mailQueued ?? (() => {}),
    now: parts.now ?? (() => new Date()),
  };
}

export function ownAddresses(config: Config): OwnAddresses {
  return new OwnAddresses([config.helpdesk.address, ...config.units.map((u) => u.address)]);
}
