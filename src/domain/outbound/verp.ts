import { createHmac, timingSafeEqual } from 'node:crypto';
import { outboxIdFor, type OutboundDraft } from '../../mail/send/outbox.ts';
import type { DomainContext } from '../context.ts';
import { addressKey } from '../engine/reply-tokens.ts';

/**
 * Bounce addresses (VERP): every mail goes out with the envelope sender
 * `<local>+bounce-<outbox id>-<mac>@<domain>`, so a delivery report comes back to an address that
 * names the very mail it is about, whatever the reporting MTA writes in its report. The MAC (an
 * HMAC of the outbox id under the reply-token key) keeps anyone from marking a mail failed by
 * writing to a made-up bounce address. 12 base32 characters (60 bits) keep the local part short
 * (RFC 5321: at most 64 octets) and survive mail systems that fold case.
 */
const MAC_LENGTH = 12;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

function mac(key: Buffer, outboxId: string): string {
  const digest = createHmac('sha256', key).update(`bounce:${outboxId.toLowerCase()}`).digest();
  let out = '';
  let value = 0;
  let bits = 0;
  for (const byte of digest) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < MAC_LENGTH) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length === MAC_LENGTH) break;
  }
  return out;
}

function helpdeskParts(ctx: DomainContext): [string, string] {
  return ctx.config.helpdesk.address.toLowerCase().split('@') as [string, string];
}

/** The envelope sender of the outbound mail with this _id. */
export async function bounceAddressFor(ctx: DomainContext, outboxId: unknown): Promise<string> {
  const [local, domain] = helpdeskParts(ctx);
  const id = String(outboxId);
  return `${local}+bounce-${id}-${mac(await addressKey(ctx), id)}@${domain}`;
}

/** The drafts with their bounce addresses as envelope senders (the outbox _id follows from the key). */
export async function withBounceAddresses(ctx: DomainContext, drafts: OutboundDraft[]): Promise<OutboundDraft[]> {
  return Promise.all(drafts.map(async (d) => ({ ...d, envelopeFrom: await bounceAddressFor(ctx, outboxIdFor(d.key)) })));
}

export interface BounceAddress {
  address: string;
  /** The outbox _id it names, when it has the form of one. */
  outboxId: string | null;
  /** Whether its MAC is ours: false for a made-up or altered address. */
  valid: boolean;
}

/** The recipients that are the helpdesk's bounce addresses in form, each checked. */
export async function bounceAddressesIn(ctx: DomainContext, recipients: string[]): Promise<BounceAddress[]> {
  const [local, domain] = helpdeskParts(ctx);
  const prefix = `${local}+bounce-`;
  const out: BounceAddress[] = [];
  for (const address of new Set(recipients.map((a) => a.trim().toLowerCase()))) {
    if (!address.startsWith(prefix) || !address.endsWith(`@${domain}`)) continue;
    const m = /^([0-9a-f]{24})-([a-z2-7]+)$/.exec(address.slice(prefix.length, -domain.length - 1));
    if (!m) {
      out.push({ address, outboxId: null, valid: false });
      continue;
    }
    const expected = Buffer.from(mac(await addressKey(ctx), m[1]!));
    const given = Buffer.from(m[2]!);
    out.push({ address, outboxId: m[1]!, valid: given.length === expected.length && timingSafeEqual(given, expected) });
  }
  return out;
}
