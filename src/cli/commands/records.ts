import os from 'node:os';
import type { Config } from '../../config/load.ts';
import { toBuffer } from '../../db/blobs.ts';
import type { InboxItem } from '../../db/models/inbox.ts';
import type { OutboxMail } from '../../db/models/outbox.ts';
import { HelpgateError, NotFoundError } from '../../errors/errors.ts';
import { retryAndRecord } from '../../domain/ops/quarantine.ts';
import { findTicketByNumber, listTickets, ticketArticles } from '../../domain/tickets.ts';
import { ticketEvents } from '../../domain/engine/transition.ts';
import { REPEATED_BOUNCES, repeatedlyBouncing, type BounceHistory } from '../../domain/outbound/hard-bounces.ts';
import { linksIn } from '../../mail/parse/readable.ts';
import { formatTag } from '../../mail/parse/subject.ts';
import { isOutboxId, outboxMail, readOutboxMail } from '../../mail/send/outbox-admin.ts';
import { openCliSession, type CliSession } from '../db-access.ts';
import { UsageError } from '../usage.ts';

async function withSession<T>(config: Config, fn: (s: CliSession) => Promise<T>): Promise<T> {
  const session = await openCliSession(config);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/** Who runs a command, for the audit log: the system account and host (there is no sign-in here). */
function cliActor() {
  let user = 'unknown user';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry for this uid (some containers): the host still says where it came from
  }
  return { address: null, name: `${user}@${os.hostname()}`, sub: null };
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
}

const show = (v: unknown) => (v && typeof v === 'object' ? ((v as { address?: string }).address ?? (v instanceof Date ? iso(v) : JSON.stringify(v))) : String(v ?? '-'));
const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString().replace(/\.\d+Z$/, 'Z') : '');

export async function ticketsCommand(args: string[], config: Config): Promise<number> {
  const json = args.includes('--json');
  const [sub, arg] = args.filter((a) => a !== '--json');
  if (sub === 'list' || sub === undefined) {
    return withSession(config, async ({ ctx }) => {
      const tickets = await listTickets(ctx, { limit: 1000 });
      if (json) print(tickets);
      else if (!tickets.length) process.stdout.write('no tickets\n');
      else
        table([
          ['NUMBER', 'STATE', 'UNIT', 'UPDATED', 'REQUESTER', 'SUBJECT'],
          ...tickets.map((t) => [String(t.number), t.state, t.su, iso(t.updatedAt), t.requester.address, t.subject]),
        ]);
      return 0;
    });
  }
  if (sub === 'show') {
    const number = Number(arg);
    if (!Number.isInteger(number)) throw new UsageError('tickets show needs a ticket number');
    return withSession(config, async ({ ctx }) => {
      const ticket = await findTicketByNumber(ctx, number);
      if (!ticket) throw new NotFoundError('ticket', number);
      const articles = await ticketArticles(ctx, ticket);
      const events = await ticketEvents(ctx, ticket._id);
      if (json) {
        print({ ...ticket, articles, events });
        return 0;
      }
      process.stdout.write(
        `${formatTag(config.ticketPrefix, ticket.number)} ${ticket.subject}\n` +
          `state: ${ticket.state}   unit: ${ticket.su}   priority: ${ticket.priority}   assignee: ${ticket.assignee?.address ?? '-'}   requester: ${ticket.requester.address}\n` +
          `first response: ${ticket.firstResponseAt ? iso(ticket.firstResponseAt) : `due ${iso(ticket.slaDue)}${ticket.slaEscalatedAt ? ' (escalated)' : ''}`}\n` +
          `participants: ${ticket.participants.join(', ') || '-'}   created: ${iso(ticket.createdAt)}   updated: ${iso(ticket.updatedAt)}\n`,
      );
      if (ticket.lastDeliveryFailure) process.stdout.write(`last delivery failure: ${ticket.lastDeliveryFailure.error}\n`);
      for (const a of articles) {
        process.stdout.write(`\n--- ${iso(a.createdAt)} ${a.authorRole} ${a.from?.address ?? ''} ${a.messageId ?? ''}\n`);
        if (a.internal) process.stdout.write(`(internal note${a.flag ? `: ${a.flag}` : ''})\n`);
        if (a.automated) process.stdout.write(`(no automatic answer: ${a.automated})\n`);
        if (a.senderAuth) process.stdout.write(`(${a.senderAuth.status === 'verified' ? 'verified' : 'unverified'} sender: ${a.senderAuth.reason})\n`);
        process.stdout.write(`${a.text.trim()}\n`);
        for (const att of a.attachments) process.stdout.write(`[attachment] ${att.filename ?? '(unnamed)'} ${att.contentType} ${att.size} bytes sha256:${att.sha256}\n`);
      }
      if (events.length) {
        process.stdout.write('\naudit log:\n');
        for (const e of events) {
          const changes = e.changes.map((c) => `${c.field}: ${show(c.from)} → ${show(c.to)}`).join('; ');
          process.stdout.write(`  ${iso(e.at)}  ${e.channel.padEnd(6)} ${(e.actor.address ?? e.actor.name ?? e.actor.role).padEnd(30)} ${e.action}${e.outcome === 'refused' ? ` REFUSED: ${e.reason}` : changes ? `  ${changes}` : ''}\n`);
        }
      }
      return 0;
    });
  }
  throw new UsageError(`tickets: unknown subcommand "${sub}"`);
}

export async function outboxCommand(args: string[], config: Config): Promise<number> {
  const json = args.includes('--json');
  const raw = args.includes('--raw');
  const [sub, id] = args.filter((a) => a !== '--json' && a !== '--raw');
  if (sub === 'show') {
    if (!id) throw new UsageError('outbox show needs an id');
    // Checked before the database is reached: a typo is answered at once, not by the driver.
    if (!isOutboxId(id)) throw new HelpgateError('usage', `"${id}" is not an outbound mail id: ids are 24 hexadecimal digits, as \`helpgate outbox\` lists them`);
  }
  return withSession(config, async ({ store, ctx }) => {
    const { Outbox } = store.models;
    if (sub === 'show') {
      const mail = await outboxMail(store, id!);
      if (!mail) throw new NotFoundError('outbound mail', id!);
      if (raw) {
        if (!mail.raw) throw new HelpgateError('not_found', `outbound mail ${id} keeps no MIME source (only captured mail does): leave out --raw`);
        process.stdout.write(toBuffer(mail.raw).toString('utf8'));
      } else process.stdout.write(await showOutboxMail(mail, config));
      return 0;
    }
    if (sub === 'bounces') {
      const history = await repeatedlyBouncing(ctx, 1);
      if (json) print(history);
      else if (!history.length) process.stdout.write('no hard bounces\n');
      else bounceTable(history);
      return 0;
    }
    if (sub !== undefined) throw new UsageError(`outbox: unknown subcommand "${sub}"`);
    const mails = await Outbox.find({}, { raw: 0 }).sort({ createdAt: -1 }).limit(500).lean<OutboxMail[]>();
    if (json) print(mails);
    else if (!mails.length) process.stdout.write('outbox is empty\n');
    else
      table([
        ['ID', 'STATE', 'KIND', 'CREATED', 'TO', 'SUBJECT', 'NOTE'],
        ...mails.map((m) => [String(m._id), m.state, m.kind, iso(m.createdAt), m.to.join(','), m.subject, m.lastError ?? '']),
      ]);
    if (!json) {
      const repeated = await repeatedlyBouncing(ctx);
      if (repeated.length) {
        process.stdout.write(`\naddresses whose mail bounced ${REPEATED_BOUNCES} times or more (all: helpgate outbox bounces):\n`);
        bounceTable(repeated);
      }
    }
    return 0;
  });
}

function bounceTable(history: BounceHistory[]): void {
  table([['ADDRESS', 'HARD BOUNCES', 'LAST', 'LAST STATUS'], ...history.map((h) => [h.address, String(h.count), iso(h.lastAt), `${h.lastStatus}${h.lastDiagnostic ? ` ${h.lastDiagnostic}` : ''}`])]);
}

/**
 * One outbound mail for a person to read: what helpgate knows of it, then the mail decoded
 * (headers, text, links, attachments), not its quoted-printable MIME. Captured mail is decoded
 * from the message kept; other mail is shown from what was queued.
 */
async function showOutboxMail(mail: OutboxMail, config: Config): Promise<string> {
  const lines = [
    `outbound mail ${mail._id}: ${mail.kind}, ${mail.state}${mail.ticketNumber ? `, ticket ${formatTag(config.ticketPrefix, mail.ticketNumber)}` : ''}, queued ${iso(mail.createdAt)}${mail.sentAt ? `, ${mail.state === 'captured' ? 'captured' : 'sent'} ${iso(mail.sentAt)}` : ''}`,
  ];
  if (mail.lastError) lines.push(`last error: ${mail.lastError}`);
  const readable = await readOutboxMail(mail);
  const headers = readable ? readable.headers.map((h) => [h.name, h.value]) : [['From', mail.from], ['To', mail.to.join(', ')], ...(mail.cc.length ? [['Cc', mail.cc.join(', ')]] : []), ['Subject', mail.subject], ['Date', new Date(mail.date).toUTCString()], ['Message-ID', mail.messageId]];
  const text = readable?.text ?? mail.text;
  const links = readable?.links ?? linksIn(mail.text, mail.html);
  lines.push('', ...headers.map(([k, v]) => `${k}: ${v}`), '', text.replace(/\n+$/, ''));
  if (links.length) lines.push('', 'Links in this mail:', ...links.map((l, i) => `  [${i + 1}] ${l}`));
  if (readable?.attachments.length) lines.push('', 'Attachments:', ...readable.attachments.map((a) => `  ${a.filename ?? '(unnamed)'} ${a.contentType} ${a.size} bytes`));
  return `${lines.join('\n')}\n`;
}

export async function inboxCommand(args: string[], config: Config): Promise<number> {
  const json = args.includes('--json');
  const [sub, id] = args.filter((a) => a !== '--json');
  return withSession(config, async ({ store, ctx }) => {
    if (sub === 'retry') {
      if (!id) throw new UsageError('inbox retry needs an id');
      // The same retry as the portal's Quarantine page, recorded in the same audit log.
      const result = await retryAndRecord(ctx, cliActor(), 'cli', id, { onlyQuarantined: false });
      if (!result.ok) throw new NotFoundError('inbox item', id);
      process.stdout.write(`${id} queued again\n`);
      return 0;
    }
    if (sub !== undefined) throw new UsageError(`inbox: unknown subcommand "${sub}"`);
    const items = await store.models.Inbox.find({}, { raw: 0 }).sort({ receivedAt: -1 }).limit(500).lean<InboxItem[]>();
    if (json) print(items);
    else if (!items.length) process.stdout.write('inbox is empty\n');
    else
      table([
        ['ID', 'STATE', 'SOURCE', 'RECEIVED', 'FROM', 'TICKET', 'NOTE'],
        ...items.map((i) => [String(i._id), i.state, i.source, iso(i.receivedAt), i.envelope.mailFrom ?? '', i.ticketNumber ? String(i.ticketNumber) : '', i.lastError ?? i.note ?? '']),
      ]);
    return 0;
  });
}
