import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Article } from '../../src/db/models/article.ts';
import type { InboxItem } from '../../src/db/models/inbox.ts';
import type { Store } from '../../src/db/store.ts';
import type { Dovecot } from './dovecot.ts';
import { FIRST_LINE, HELPDESK } from './helpgate.ts';

export interface TestMailbox {
  name?: string;
  user: string;
  folder?: string;
  afterStore?: 'move' | 'seen' | 'delete';
  password?: string;
  passwordEnv?: string;
  pollSeconds?: number;
}

/**
 * A configuration file (JSON) with one Support Unit and the given mailboxes on `dovecot`.
 * Without members the unit gets no notifications, so the outbox holds one mail per ticket.
 */
export function writeImapConfig(dir: string, dovecot: Dovecot, mailboxes: TestMailbox[], opts: { members?: boolean } = {}): string {
  const file = path.join(dir, `helpgate-${randomBytes(3).toString('hex')}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      units: [{ key: 'first-line', name: 'First Line Support', address: 'first-line@helpdesk.localhost', entry: true, members: opts.members ? FIRST_LINE : [] }],
      mailboxes: mailboxes.map((m) => ({
        name: m.name ?? 'help',
        host: '127.0.0.1',
        port: dovecot.port,
        tls: 'none',
        user: m.user,
        ...(m.passwordEnv ? { passwordEnv: m.passwordEnv } : { password: m.password ?? 'secret' }),
        folder: m.folder ?? 'INBOX',
        afterStore: m.afterStore ?? 'move',
        // Short, so that a test never waits long for the safety-net poll; IDLE does the work.
        pollSeconds: m.pollSeconds ?? 2,
      })),
    }),
  );
  return file;
}

export interface TestMail {
  index: number;
  from: string;
  messageId: string;
  raw: string;
}

/** Small, realistic requests: one sender each (so each opens a ticket and no rate limit applies). */
export function composeMails(count: number, opts: { tag?: string; bodyBytes?: number; start?: number } = {}): TestMail[] {
  const run = opts.tag ?? randomBytes(4).toString('hex');
  return Array.from({ length: count }, (_, i) => {
    const index = (opts.start ?? 0) + i;
    const from = `requester-${run}-${index}@imap.example`;
    const messageId = `<imap-${run}-${index}@imap.example>`;
    const body = `Hello, request ${index} here. ${'The upload of my study keeps failing. '.repeat(Math.ceil((opts.bodyBytes ?? 300) / 38))}`;
    const raw = [
      `From: Requester ${index} <${from}>`,
      `To: ${HELPDESK}`,
      `Subject: IMAP request ${index}`,
      `Message-ID: ${messageId}`,
      'Date: Tue, 03 Jun 2025 09:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      body.replace(/(.{1,76})(\s|$)/g, '$1\r\n'),
    ].join('\r\n');
    return { index, from, messageId, raw };
  });
}

/** Articles by Message-ID. */
export async function articlesByMessageId(store: Store): Promise<Map<string, number>> {
  const articles = await store.models.Article.find({}, { messageId: 1 }).lean<Article[]>();
  const counts = new Map<string, number>();
  for (const a of articles) counts.set(a.messageId ?? '', (counts.get(a.messageId ?? '') ?? 0) + 1);
  return counts;
}

/** The content hashes of everything stored in the inbox from IMAP. */
export async function storedHashes(store: Store): Promise<Set<string>> {
  const items = await store.models.Inbox.find({ source: 'imap' }, { rawSha256: 1 }).lean<InboxItem[]>();
  return new Set(items.map((i) => i.rawSha256));
}

export const sha256 = (raw: string | Buffer) => createHash('sha256').update(raw).digest('hex');
