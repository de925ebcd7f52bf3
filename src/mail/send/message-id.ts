import { createHash, randomBytes } from 'node:crypto';

/** A new Message-ID under our domain, e.g. <m1abc.Zx3…@helpdesk.example.org>. */
export function newMessageId(domain: string): string {
  return `<hg.${Date.now().toString(36)}.${randomBytes(12).toString('base64url')}@${domain}>`;
}

/**
 * The Message-ID of the outbound mail with idempotency key `key`, known before the mail is
 * queued (e.g. to record it as the thread tip in the same write as the ticket). Still made once
 * per mail: the key names exactly one mail.
 */
export function messageIdFor(key: string, domain: string): string {
  return `<hg.${createHash('sha256').update(`message-id:${key}`).digest('base64url').slice(0, 24)}@${domain}>`;
}
