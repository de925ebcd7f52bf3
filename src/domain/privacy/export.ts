import { strToU8, zipSync, type Zippable } from 'fflate';
import { inboxRaw } from '../../db/inbox-batch.ts';
import type { Article } from '../../db/models/article.ts';
import type { InboxItem } from '../../db/models/inbox.ts';
import type { ErasureRequest } from '../../db/models/privacy.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import type { DomainContext } from '../context.ts';
import { ticketArticles } from '../tickets.ts';
import { isOwnArticle, ownArticles, rawMailsFrom, ticketsAsRequesterOrParticipant } from './footprint.ts';
import type { DataSubject } from './subject.ts';

/** One personal-data archive (GDPR Art. 15 and 20): a zip of data.json, their files and their raw mails. */
export interface PersonalDataArchive {
  filename: string;
  zip: Uint8Array;
  /** What is in it, for the log and the command line. */
  summary: { tickets: number; articles: number; attachments: number; mails: number };
}

/** A file name that is safe inside a zip on every system. */
function safeName(name: string | null | undefined, fallback: string): string {
  const cleaned = (name ?? '').normalize('NFC').replace(/[\u0000-\u001f\u007f/\\:*?"<>|]+/g, '_').replace(/^\.+/, '').trim().slice(0, 120);
  return cleaned || fallback;
}

const README = `This archive holds what the helpdesk keeps about you.

data.json      your identity (as your identity provider sent it), your linked mail
               addresses, the policies you accepted, your erasure requests, and the
               tickets you opened or take part in with the messages you can see on the
               portal (the Support Units' internal notes are not part of them)
attachments/   the files you sent, by ticket
mails/         the mails you sent, exactly as we received them (.eml)

Files other people sent are listed in data.json by name only.
`;

/**
 * Everything the helpdesk holds about a person that they may see, as one zip: their identity,
 * bound addresses, consents, the tickets where they are requester or participant with the
 * articles the portal shows them (never internal notes, never the audit log), the files they
 * sent, and the raw mails they sent. Other people's files are named, not included.
 */
export async function exportPersonalData(ctx: DomainContext, subject: DataSubject): Promise<PersonalDataArchive> {
  const files: Zippable = {};
  const summary = { tickets: 0, articles: 0, attachments: 0, mails: 0 };
  const tickets = await ticketsAsRequesterOrParticipant(ctx, subject);
  const ticketDocs = [];
  for (const ticket of tickets) {
    const articles = (await ticketArticles(ctx, ticket)).filter((a) => !a.internal);
    ticketDocs.push({ ...ticketSummary(ctx, subject, ticket), articles: [] as unknown[] });
    const doc = ticketDocs.at(-1)!;
    for (const a of articles) {
      const own = isOwnArticle(subject, a);
      const attachments = [];
      for (const [i, att] of a.attachments.entries()) {
        let file: string | null = null;
        if (own) {
          const content = await ctx.store.blobs.get(att.sha256);
          if (content) {
            file = `attachments/${ticket.number}/${String(a._id)}-${i + 1}-${safeName(att.filename, 'attachment')}`;
            files[file] = new Uint8Array(content);
            summary.attachments++;
          }
        }
        attachments.push({ filename: att.filename, contentType: att.contentType, size: att.size, file, ...(own && !file ? { note: 'no longer kept' } : {}) });
      }
      doc.articles.push(articleSummary(a, own, attachments));
      summary.articles++;
    }
    summary.tickets++;
  }

  const mine = await ownArticles(ctx, subject);
  const mails = [];
  for (const item of await rawMailsFrom(ctx, subject, mine)) {
    const full = await ctx.store.models.Inbox.findById(item._id).lean<InboxItem>();
    const raw = full && !full.rawRemoved ? await inboxRaw(ctx.store, full) : null;
    const file = raw ? `mails/${new Date(item.receivedAt).toISOString().replace(/[:.]/g, '-')}-${String(item._id)}.eml` : null;
    if (raw && file) {
      files[file] = new Uint8Array(raw);
      summary.mails++;
    }
    mails.push({ receivedAt: item.receivedAt, ticketNumber: item.ticketNumber, state: item.state, file, ...(file ? {} : { note: item.rawRemoved ? `removed (${item.rawRemoved.reason}) on ${new Date(item.rawRemoved.at).toISOString().slice(0, 10)}` : 'no longer kept' }) });
  }

  const requests = subject.sub ? await ctx.store.models.ErasureRequest.find({ sub: subject.sub }).sort({ requestedAt: 1 }).lean<ErasureRequest[]>() : [];
  const u = subject.user;
  const data = {
    exportedAt: ctx.now(),
    helpdesk: { name: ctx.config.helpdesk.name, address: ctx.config.helpdesk.address, url: ctx.config.publicUrl },
    identity: u
      ? {
          sub: u._id,
          name: u.name,
          givenName: u.givenName,
          familyName: u.familyName,
          email: u.email,
          emailVerified: u.emailVerified,
          entitlements: u.entitlements,
          affiliations: u.affiliations,
          homeOrganization: u.homeOrganization,
          firstSignInAt: u.createdAt,
          lastSignInAt: u.lastSignInAt,
        }
      : null,
    addresses: u ? u.addresses.map((a) => ({ address: a.address, boundAt: a.boundAt, via: a.via })) : subject.addresses.map((address) => ({ address })),
    consents: (u?.consents ?? []).map((c) => ({ policyVersion: c.version, acceptedAt: c.at, fromIp: c.ip })),
    erasureRequests: requests.map((r) => ({ requestedAt: r.requestedAt, state: r.state, dueAt: r.dueAt, cancelledAt: r.cancelledAt })),
    tickets: ticketDocs,
    mails,
  };
  files['data.json'] = strToU8(`${JSON.stringify(data, null, 2)}\n`);
  files['README.txt'] = strToU8(README);
  const zip = zipSync(files, { level: 6, mtime: ctx.now() });
  const stamp = ctx.now().toISOString().slice(0, 10);
  ctx.log.info({ sub: subject.sub, ...summary }, 'personal data exported');
  return { filename: `helpdesk-data-${stamp}.zip`, zip, summary };
}

function ticketSummary(ctx: DomainContext, subject: DataSubject, t: Ticket) {
  const requester = (!!subject.sub && t.ownerSub === subject.sub) || subject.addresses.includes(t.requester.address);
  return {
    number: t.number,
    reference: `${ctx.config.ticketPrefix}#${t.number}`,
    subject: t.subject,
    yourRole: requester ? 'requester' : 'participant',
    state: t.state,
    priority: t.priority,
    category: t.category,
    supportUnit: ctx.units.get(t.su)?.name ?? t.su,
    openedVia: t.channel,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
  };
}

function articleSummary(a: Article, own: boolean, attachments: unknown[]) {
  return {
    date: a.date ?? a.createdAt,
    writtenBy: own ? 'you' : a.authorRole === 'agent' ? `${a.from?.name || 'Support'} (helpdesk)` : a.from?.name || a.authorRole,
    ...(own ? { from: a.from, to: a.to, cc: a.cc } : {}),
    channel: a.channel,
    subject: a.subject,
    text: a.text,
    attachments,
  };
}
