import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../../db/store.ts';
import { insertOnce } from '../../db/coordination/index.ts';
import type { DomainContext } from '../context.ts';

/**
 * Agents' reply addresses: help+<number>-<token>@domain, where the token is an HMAC of the
 * ticket and the agent's address. A reply to it proves (as far as mail can) that the writer
 * received that agent's notification of that ticket: only then are commands honoured.
 *
 * The key is REPLY_TOKEN_SECRET, or one made at first start and kept in the database, so that
 * every helpgate process on the database makes and accepts the same addresses.
 */
const SECRET_ID = 'reply-token-key';
const keys = new WeakMap<Store, Promise<Buffer>>();

async function keyOf(ctx: DomainContext): Promise<Buffer> {
  if (ctx.config.replyTokenSecret) return Buffer.from(ctx.config.replyTokenSecret, 'utf8');
  let key = keys.get(ctx.store);
  if (!key) {
    key = loadOrMakeKey(ctx.store);
    keys.set(ctx.store, key);
    key.catch(() => keys.delete(ctx.store));
  }
  return key;
}

async function loadOrMakeKey(store: Store): Promise<Buffer> {
  const { Secret } = store.models;
  const found = await Secret.findById(SECRET_ID).lean<{ value: string }>();
  if (found) return Buffer.from(found.value, 'base64');
  // Whoever inserted first, everyone uses the stored one.
  const { doc } = await insertOnce<{ value: string }>(Secret, { _id: SECRET_ID, value: randomBytes(32).toString('base64') });
  return Buffer.from(doc.value, 'base64');
}

function mac(key: Buffer, ticketId: string, agent: string): string {
  // 20 base32 characters: 100 bits, written in lower case because some mail systems fold case.
  const digest = createHmac('sha256', key).update(`reply:${ticketId}:${agent.toLowerCase()}`).digest();
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 20) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/** The address an agent's notification of this ticket asks them to reply to. */
export async function replyAddressFor(ctx: DomainContext, ticket: { _id: unknown; number: number }, agent: string): Promise<string> {
  const [local, domain] = ctx.config.helpdesk.address.split('@') as [string, string];
  return `${local}+${ticket.number}-${mac(await keyOf(ctx), String(ticket._id), agent)}@${domain}`;
}

/** The ticket numbers and tokens of the helpdesk's sub-addresses among these recipients. */
export function replyTokensIn(ctx: DomainContext, recipients: string[]): { number: number; token: string }[] {
  const [local, domain] = ctx.config.helpdesk.address.toLowerCase().split('@') as [string, string];
  const out: { number: number; token: string }[] = [];
  for (const r of recipients) {
    const m = /^([^@+]+)\+(\d{1,12})-([a-z2-7]{20})@(.+)$/.exec(r.trim().toLowerCase());
    if (m && m[1] === local && m[4] === domain) out.push({ number: Number(m[2]), token: m[3]! });
  }
  return out;
}

/** Whether `token` was made for this agent and this ticket. */
export async function isValidReplyToken(ctx: DomainContext, ticket: { _id: unknown }, agent: string, token: string): Promise<boolean> {
  const expected = Buffer.from(mac(await keyOf(ctx), String(ticket._id), agent));
  const given = Buffer.from(token.toLowerCase());
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The same key, for the helpdesk's other addresses that must not be forged (bounce addresses: outbound/verp.ts). */
export const addressKey = keyOf;
