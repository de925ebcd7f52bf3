import { inboxRaw } from '../db/inbox-batch.ts';
import type { InboxItem } from '../db/models/inbox.ts';
import type { IntakeNotice } from '../db/models/intake.ts';
import { automationReason } from '../mail/parse/automated.ts';
import { parseMessage } from '../mail/parse/parse.ts';
import type { DomainContext } from './context.ts';
import { sendNotice } from './identity/notices.ts';

const MB = 1024 * 1024;

/**
 * Answers what the intakes recorded but could not deliver (mail/receive/too-large.ts): the
 * sender of a message over MAX_MESSAGE_SIZE is told once (the notice's key), unless the
 * message is automated or from one of our own addresses. Returns whether there was work.
 * Safe to run in several processes at once: the outbox keeps one mail per key.
 */
export async function answerIntakeNotices(ctx: DomainContext): Promise<boolean> {
  const { IntakeNotice, Inbox } = ctx.store.models;
  const notices = await IntakeNotice.find({}).limit(20).lean<IntakeNotice[]>();
  for (const notice of notices) {
    const item = await Inbox.findById(notice._id).lean<InboxItem>();
    const raw = item ? await inboxRaw(ctx.store, item) : null;
    if (item && raw) {
      const mail = await parseMessage(raw);
      const sender = mail.from?.address ?? null;
      const automated = automationReason({ headers: mail.headers, from: sender, mailFrom: item.envelope.mailFrom, ownAddress: ctx.config.helpdesk.address });
      if (!sender || automated || ctx.own.has(sender)) {
        ctx.log.info({ inboxId: String(item._id), reason: automated ?? 'no sender to tell' }, 'too-large message: sender not told');
      } else {
        await sendNotice(ctx, {
          key: notice.key,
          kind: 'too-large',
          template: 'too-large',
          to: sender,
          subject: `Your message was too large: ${mail.subject || '(no subject)'}`,
          autoSubmitted: 'auto-replied',
          inReplyTo: mail.messageId,
          view: { name: mail.from?.name ?? '', tooLargeSubject: mail.subject || '(no subject)', sizeMb: (notice.size / MB).toFixed(1), limitMb: (notice.limit / MB).toFixed(1) },
        });
        ctx.log.info({ inboxId: String(item._id), to: sender }, 'too-large message: sender told');
      }
    }
    await IntakeNotice.deleteOne({ _id: notice._id });
  }
  return notices.length > 0;
}
