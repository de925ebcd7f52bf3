import { readFileSync } from 'node:fs';
import type Mail from 'nodemailer/lib/mailer/index.js';
import type { Article } from '../../src/db/models/article.ts';
import type { CapturedMail } from './capture-smtp.ts';
import type { TestHelpgate } from './helpgate.ts';
import { until } from './wait.ts';

/** A raw mail from test/fixtures. */
export function fixture(name: string): Buffer {
  return readFileSync(new URL(`../fixtures/${name}`, import.meta.url));
}

/**
 * Waits until helpgate has nothing left to do: every received mail processed and every mail
 * that caused accepted by the relay. Only then may a test count what did (not) arrive.
 */
export async function quiet(h: TestHelpgate): Promise<void> {
  const { Inbox, Outbox } = h.hg.store.models;
  await until(async () => (await Inbox.countDocuments({ state: 'pending' })) === 0 && (await Outbox.countDocuments({ state: 'queued' })) === 0, {
    what: 'helpgate to finish processing and sending',
    timeoutMs: 60_000,
  });
}

/** The number of the ticket the mail with this Message-ID was filed on, once it is filed. */
export async function ticketOf(h: TestHelpgate, messageId: string): Promise<number> {
  const article = await until(() => h.hg.store.models.Article.findOne({ messageId }).lean<Article>(), { what: `the article of ${messageId}`, timeoutMs: 60_000 });
  return article.ticketNumber;
}

/** The mail that reached `address` as an answer to the message `inReplyTo`. */
export function mailTo(h: TestHelpgate, address: string, inReplyTo: string, what: string): Promise<CapturedMail> {
  return h.relay.waitFor((m) => m.envelope.rcptTo.includes(address) && m.parsed.inReplyTo === inReplyTo, what, 60_000);
}

/**
 * What a mail client sends when its user presses "Reply" on `original`: to its Reply-To (or
 * From), "Re: " before the subject, In-Reply-To its Message-ID, References its References
 * followed by its Message-ID.
 */
export function clientReply(original: CapturedMail, reply: { from: string; text: string; cc?: string | string[] }): Mail.Options {
  const parent = original.parsed;
  const to = parent.replyTo[0]?.address ?? parent.from?.address;
  return {
    from: reply.from,
    to,
    ...(reply.cc ? { cc: reply.cc } : {}),
    subject: `Re: ${parent.subject}`,
    text: reply.text,
    inReplyTo: parent.messageId ?? undefined,
    references: [...parent.references, ...(parent.messageId ? [parent.messageId] : [])],
  };
}

/** Addresses of a parsed address list, for comparing. */
export function addressesOf(list: { address: string }[]): string[] {
  return list.map((a) => a.address);
}
