import { randomBytes } from 'node:crypto';

/** A new Message-ID under our domain, e.g. <m1abc.Zx3…@helpdesk.example.org>. */
export function newMessageId(domain: string): string {
  return `<hg.${Date.now().toString(36)}.${randomBytes(12).toString('base64url')}@${domain}>`;
}
