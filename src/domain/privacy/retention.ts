import type { Types } from 'mongoose';
import { removeUnusedBlobs, type ReleasedBlob } from '../../db/blob-references.ts';
import type { Article } from '../../db/models/article.ts';
import type { InboxItem } from '../../db/models/inbox.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import { metrics } from '../../log/metrics.ts';
import type { DomainContext } from '../context.ts';

const DAY = 86_400_000;
/** Documents changed per write. */
const BATCH = 200;

/** What one application of the retention rules removed. */
export interface RetentionReport {
  /** Raw messages of ingested mail. */
  rawMails: number;
  /** Raw messages of held mail nobody claimed. */
  heldMails: number;
  /** Outbound mails whose text, HTML and MIME copy were removed. */
  outbound: number;
  /** Attachments of closed tickets. */
  attachments: number;
  /** Blobs deleted because nothing referred to them any more. */
  blobs: number;
}

function daysBefore(now: Date, days: number): Date {
  return new Date(now.getTime() - days * DAY);
}

function monthsBefore(now: Date, months: number): Date {
  const d = new Date(now);
  d.setUTCMonth(d.getUTCMonth() - months);
  return d;
}

async function inBatches<T>(items: readonly T[], write: (batch: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += BATCH) await write(items.slice(i, i + BATCH));
}

/**
 * Applies the retention rules of the configuration file (`retention:`, docs/privacy.md) as
 * of ctx.now(): removes what is due and nothing else. What was removed is marked (the inbox
 * item's `rawRemoved`, the outbound mail's `contentRemoved`, an article's note), and the marks
 * are what a later run skips: running it twice removes nothing the second time. Safe beside
 * other processes doing the same (each write is by _id and sets the same values).
 */
export async function applyRetention(ctx: DomainContext): Promise<RetentionReport> {
  const { Inbox, HeldMail, Outbox } = ctx.store.models;
  const rules = ctx.config.retention;
  const now = ctx.now();
  const released: ReleasedBlob[] = [];
  const report: RetentionReport = { rawMails: 0, heldMails: 0, outbound: 0, attachments: 0, blobs: 0 };

  // Raw messages of mail that was ingested (a ticket, an article, or ignored on purpose).
  // Quarantined mail keeps its message: someone has to look at it first.
  const rawDue = await Inbox.find({ state: { $in: ['done', 'ignored'] }, receivedAt: { $lte: daysBefore(now, rules.rawMailDays) }, rawRemoved: null }, { rawSha256: 1, size: 1 }).lean<Pick<InboxItem, '_id' | 'rawSha256' | 'size'>[]>();
  await inBatches(rawDue, (batch) => Inbox.updateMany({ _id: { $in: batch.map((i) => i._id) } }, { $set: { raw: null, rawRemoved: { at: now, reason: `retention: raw mail kept ${rules.rawMailDays} days` } } }));
  released.push(...rawDue.map((i) => ({ sha256: i.rawSha256, size: i.size })));
  report.rawMails = rawDue.length;

  // Held mail nobody claimed: expired after HOLD_DAYS, its message kept heldMailDays more.
  const heldDue = await Inbox.find({ state: 'expired', receivedAt: { $lte: daysBefore(now, ctx.config.holdDays + rules.heldMailDays) }, rawRemoved: null }, { rawSha256: 1, size: 1 }).lean<Pick<InboxItem, '_id' | 'rawSha256' | 'size'>[]>();
  await inBatches(heldDue, async (batch) => {
    const ids = batch.map((i) => i._id);
    await Inbox.updateMany({ _id: { $in: ids } }, { $set: { raw: null, rawRemoved: { at: now, reason: `retention: held mail kept HOLD_DAYS + ${rules.heldMailDays} days` } } });
    // The held list's entries name the mail by its subject: that goes too.
    await HeldMail.updateMany({ inboxId: { $in: ids } }, { $set: { subject: '', messageId: null } });
  });
  released.push(...heldDue.map((i) => ({ sha256: i.rawSha256, size: i.size })));
  report.heldMails = heldDue.length;

  // Copies of outbound mail: who, when and the subject stay (the delivery record), the words go.
  const outDue = await Outbox.find({ state: { $in: ['sent', 'captured'] }, sentAt: { $lte: daysBefore(now, rules.outboundDays) }, contentRemoved: null }, { _id: 1 }).lean<{ _id: Types.ObjectId }[]>();
  await inBatches(outDue, (batch) =>
    Outbox.updateMany({ _id: { $in: batch.map((m) => m._id) } }, { $set: { text: '', html: null, raw: null, contentRemoved: { at: now, reason: `retention: outbound copy kept ${rules.outboundDays} days` } } }),
  );
  report.outbound = outDue.length;

  if (rules.closedTicketAttachmentsMonths !== null) {
    const removed = await removeClosedTicketAttachments(ctx, monthsBefore(now, rules.closedTicketAttachmentsMonths), rules.closedTicketAttachmentsMonths);
    released.push(...removed);
    report.attachments = removed.length;
  }

  report.blobs = await removeUnusedBlobs(ctx.store, released);
  metrics.retention.inc({ kind: 'raw_mail' }, report.rawMails);
  metrics.retention.inc({ kind: 'held_mail' }, report.heldMails);
  metrics.retention.inc({ kind: 'outbound_copy' }, report.outbound);
  metrics.retention.inc({ kind: 'attachment' }, report.attachments);
  metrics.retention.inc({ kind: 'blob' }, report.blobs);
  if (Object.values(report).some((n) => n > 0)) ctx.log.info({ ...report }, 'retention rules applied');
  return report;
}

/** The attachments of tickets closed before `cutoff`: the article lists their names in its note. */
async function removeClosedTicketAttachments(ctx: DomainContext, cutoff: Date, months: number): Promise<ReleasedBlob[]> {
  const { Ticket, Article } = ctx.store.models;
  const closed = await Ticket.find({ state: 'closed', stateSince: { $lte: cutoff } }, { _id: 1 }).lean<Pick<Ticket, '_id'>[]>();
  if (!closed.length) return [];
  const released: ReleasedBlob[] = [];
  const articles = await Article.find({ ticketId: { $in: closed.map((t) => t._id) }, 'attachments.0': { $exists: true } }, { attachments: 1, note: 1 }).lean<Pick<Article, '_id' | 'attachments' | 'note'>[]>();
  const day = ctx.now().toISOString().slice(0, 10);
  for (const a of articles) {
    const names = a.attachments.map((f) => f.filename ?? 'attachment').join(', ');
    const said = `${a.attachments.length === 1 ? 'Attachment' : `${a.attachments.length} attachments`} (${names}) removed on ${day}: the ticket was closed more than ${months} months ago.`;
    await Article.updateOne({ _id: a._id }, { $set: { attachments: [], note: a.note ? `${a.note} ${said}` : said } });
    released.push(...a.attachments.map((f) => ({ sha256: f.sha256, size: f.size })));
  }
  return released;
}
