/** How the mail and operations pages word ages, audit actions and kinds of mail (times and sizes: format.ts). */

/** A span of time as a person says it: "5 minutes", "3 hours", "2 days". */
export function span(ms: number): string {
  const minutes = Math.max(0, Math.round(ms / 60_000));
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (minutes < 60) return unit(minutes, 'minute');
  const hours = Math.round(minutes / 60);
  if (hours < 48) return unit(hours, 'hour');
  return unit(Math.round(hours / 24), 'day');
}

const ACTIONS: Record<string, string> = {
  'held.release': 'Released as a ticket',
  'held.discard': 'Discarded',
  'inbox.retry': 'Retried',
  'outbox.retry': 'Sent again',
  'outbox.cancel': 'Cancelled',
};

export const actionName = (action: string) => ACTIONS[action] ?? action;

/** What kind of mail an outbox entry is, in words (its `kind` as the composer names it). */
const KINDS: Record<string, string> = {
  ack: 'acknowledgement',
  held: 'sign-in link (held mail)',
  'held-expired': 'held mail expired',
  'notify-new': 'new ticket (to the unit)',
  'notify-followup': 'follow-up (to the unit)',
  reply: 'reply',
  'confirm-address': 'address confirmation',
  'too-large': 'too large',
};

export const kindName = (kind: string) => KINDS[kind] ?? kind;
