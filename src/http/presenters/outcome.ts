import type { AgentAction, WebAgentResult } from '../../domain/portal/agent-actions.ts';
import { describeChanges, type UnitNames } from './audit.ts';

/** What an agent is told once an action is done (shown once, at the top of the next page). */
export function doneMessage(action: AgentAction, unit: UnitNames, handover: boolean): string {
  switch (action.kind) {
    case 'note':
      return 'Your internal note was added; the unit was told by mail. The requester does not see it.';
    case 'waiting':
      return 'The requester was asked for information; the ticket waits for their reply.';
    case 'take':
      return 'You took the ticket.';
    case 'assign':
      return `The ticket was assigned to ${unit(action.su)}.${handover ? ' Your handover comment went with it.' : ''}`;
    case 'priority':
      return `The priority is now ${action.priority}.`;
    case 'hold':
      return 'The ticket is on hold.';
    case 'solve':
      return 'The ticket is solved; the solution was mailed to the requester.';
    case 'close':
      return 'The ticket is closed.';
    case 'reopen':
      return 'The ticket is reopened.';
    case 'reply':
      return 'Your reply was added and mailed.';
  }
}

/**
 * A refusal in words: when the ticket changed since the page was shown, what changed and who
 * did it (the engine's own wording of a lost race names fields, not people).
 */
export function refusalMessage(result: Extract<WebAgentResult, { ok: false }>, unit: UnitNames): string {
  const meanwhile = describeChanges(unit, result.meanwhile);
  let reason = result.reason;
  if (meanwhile.length) {
    reason = /^already (assigned|changed \()/.test(reason) && / by .* at \d{4}-/.test(reason) ? `already ${meanwhile.join('; then ')}` : `${reason}; since you opened the page, the ticket was ${meanwhile.join('; then ')}`;
  }
  return `Not done: ${reason}.${result.textKept ? ' Your text is kept on the ticket as an internal note.' : ''}`;
}
