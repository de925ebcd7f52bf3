import type { InboxItem } from '../../db/models/inbox.ts';
import type { BounceReport, OutboxMail } from '../../db/models/outbox.ts';
import type { DeliveryReport, DsnRecipient } from '../../mail/parse/dsn.ts';
import type { ParsedMessage } from '../../mail/parse/parse.ts';
import type { DomainContext } from '../context.ts';
import { recordBounce, type BouncedRecipient } from '../delivery.ts';
import { hardBouncesOf, recordHardBounce } from '../outbound/hard-bounces.ts';
import { metrics } from '../../log/metrics.ts';
import { bounceAddressesIn } from '../outbound/verp.ts';

/**
 * Bounces: mail to one of our bounce addresses (outbound/verp.ts), and delivery status
 * notifications about one of our mails sent to any of our addresses. Neither ever opens a ticket
 * nor gets an answer: the report is recorded on the mail it is about (and on its ticket), and the
 * inbox item keeps a note of what was done.
 *
 * `report` is the mail's delivery status report, if it is one (mail/parse/read.ts).
 * Returns that note, or null for mail that is neither (it goes on to be ticketed as usual).
 */
export async function handleBounce(ctx: DomainContext, item: InboxItem, mail: ParsedMessage, report: DeliveryReport | null): Promise<{ note: string } | null> {
  const addressed = [...item.envelope.rcptTo, ...mail.to.map((a) => a.address), ...mail.headers.filter((h) => h.key === 'delivered-to' || h.key === 'x-original-to').map((h) => h.value)];
  const bounceAddresses = await bounceAddressesIn(ctx, addressed);
  if (!bounceAddresses.length && !report) return null;

  let outbound: OutboxMail | null;
  let anyRecipient: boolean;
  if (bounceAddresses.length) {
    const valid = bounceAddresses.find((b) => b.valid);
    // A made-up or altered bounce address: whatever the mail says, it names no mail of ours.
    if (!valid) return { note: `to the bounce address ${bounceAddresses[0]!.address}, whose token is not ours: ignored` };
    if (!report) return { note: `to the bounce address of outbound mail ${valid.outboxId}, but not a delivery status notification (an auto-reply?): ignored` };
    outbound = await ctx.store.models.Outbox.findById(valid.outboxId).lean<OutboxMail>();
    if (!outbound) return { note: `delivery status notification for outbound mail ${valid.outboxId}, which is not stored: ignored` };
    // The token proves which mail; the report may name the address the mail was forwarded to.
    anyRecipient = true;
  } else {
    const id = report!.originalMessageId;
    outbound = id ? await ctx.store.models.Outbox.findOne({ messageId: id }).lean<OutboxMail>() : null;
    if (!outbound) return { note: `delivery status notification about ${id ?? 'a mail without Message-ID'}, not a mail of ours: ignored` };
    // Anyone who has seen the Message-ID could write such a report: it counts only for the mail's own recipients.
    anyRecipient = false;
  }
  return { note: await recordReport(ctx, outbound, report!, anyRecipient) };
}

async function recordReport(ctx: DomainContext, mail: OutboxMail, report: DeliveryReport, anyRecipient: boolean): Promise<string> {
  const ours = new Set([...mail.to, ...mail.cc].map((a) => a.toLowerCase()));
  // The address we mailed (before any forwarding), or with a valid bounce token whatever the report names.
  const mailed = (r: DsnRecipient) => (ours.has(r.address) ? r.address : r.original && ours.has(r.original) ? r.original : anyRecipient ? r.address : null);
  const problems = report.recipients
    .filter((r): r is DsnRecipient & { action: 'failed' | 'delayed' } => r.action === 'failed' || r.action === 'delayed')
    .flatMap((r) => {
      const address = mailed(r);
      return address ? [{ ...r, address }] : [];
    });
  const what = `delivery status notification for outbound mail ${mail._id}${mail.ticketNumber ? ` of ticket ${mail.ticketNumber}` : ''}`;
  if (!problems.length) {
    const said = report.recipients.map((r) => `${r.address} ${r.action}`).join(', ') || 'no recipient';
    return `${what}: ${said}; nothing to record`;
  }
  const now = ctx.now();
  const reports: BounceReport[] = problems.map((r) => ({ address: r.address, action: r.action, status: r.status, diagnostic: r.diagnostic, reportingMta: report.reportingMta, at: now }));
  await updateOutboxMail(ctx, mail, reports);
  for (const r of problems) if (r.action === 'failed') await recordHardBounce(ctx, mail, r.address, r);
  const history = new Map((await hardBouncesOf(ctx, problems.map((r) => r.address))).map((h) => [h.address, h.count]));
  const recipients: BouncedRecipient[] = problems.map((r) => ({
    address: r.address,
    action: r.action,
    status: r.status,
    diagnostic: r.diagnostic,
    reportingMta: report.reportingMta,
    hardBounces: r.action === 'failed' ? (history.get(r.address) ?? 1) : 0,
  }));
  await recordBounce(ctx, mail, recipients);
  ctx.log.info({ outboxId: String(mail._id), ticket: mail.ticketNumber, recipients: problems.map((r) => `${r.address} ${r.action} ${r.status}`) }, 'bounce recorded');
  for (const r of problems) metrics.bounces.inc({ action: r.action });
  return `${what}: ${problems.map((r) => `${r.address} ${r.action} (${r.status})`).join(', ')}; recorded`;
}

/**
 * The mail's reports (the latest per recipient and action) and its state: failed once any
 * recipient failed, else delayed. A mail still queued keeps its state (the worker owns it until
 * it is sent; a report for it comes from an earlier attempt that reached the relay).
 */
async function updateOutboxMail(ctx: DomainContext, mail: OutboxMail, reports: BounceReport[]): Promise<void> {
  const keyOf = (r: BounceReport) => `${r.address} ${r.action}`;
  const merged = new Map((mail.bounces ?? []).map((r) => [keyOf(r), r]));
  for (const r of reports) merged.set(keyOf(r), r);
  const bounces = [...merged.values()];
  const failed = bounces.filter((r) => r.action === 'failed');
  const set: Record<string, unknown> = { bounces };
  if (mail.state !== 'queued') {
    set.state = failed.length ? 'failed' : 'delayed';
    set.lastError = (failed.length ? failed : bounces).map((r) => `${r.action === 'failed' ? 'bounced' : 'delayed'}: ${r.address} ${r.status}${r.diagnostic ? ` ${r.diagnostic}` : ''}`).join('; ');
  }
  await ctx.store.models.Outbox.updateOne({ _id: mail._id }, { $set: set });
}
