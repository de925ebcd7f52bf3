import type { OutboxMail } from '../../db/models/outbox.ts';
import type { ReadableMail } from '../../mail/parse/readable.ts';
import { capturedMails, outboxMail, readOutboxMail } from '../../mail/send/outbox-admin.ts';
import type { DomainContext } from '../context.ts';
import type { Viewer } from '../portal/access.ts';
import { mayReadCapturedMail } from './access.ts';

export interface CapturedRow {
  id: string;
  kind: string;
  to: string[];
  subject: string;
  at: Date;
  ticketNumber: number | null;
}

export interface CapturedMessage extends CapturedRow {
  state: OutboxMail['state'];
  mail: ReadableMail;
}

const rowOf = (m: OutboxMail): CapturedRow => ({ id: String(m._id), kind: m.kind, to: [...m.to, ...m.cc], subject: m.subject, at: m.sentAt ?? m.createdAt, ticketNumber: m.ticketNumber });

/** The captured mail the viewer may read, newest first; null when they may not read it at all. */
export async function listCapturedMail(ctx: DomainContext, viewer: Viewer, limit = 200): Promise<CapturedRow[] | null> {
  if (!mayReadCapturedMail(ctx.config, viewer)) return null;
  return (await capturedMails(ctx.store, limit)).map(rowOf);
}

/** One captured mail, decoded; null when it is not there, not captured, or not for this viewer. */
export async function capturedMessage(ctx: DomainContext, viewer: Viewer, id: string): Promise<CapturedMessage | null> {
  if (!mayReadCapturedMail(ctx.config, viewer)) return null;
  const mail = await outboxMail(ctx.store, id);
  if (!mail || mail.state !== 'captured') return null;
  const readable = await readOutboxMail(mail);
  if (!readable) return null;
  return { ...rowOf(mail), state: mail.state, mail: readable };
}
