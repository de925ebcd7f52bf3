import type { Article } from '../../db/models/article.ts';
import type { Actor } from '../../db/models/engine.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import type { CommandLines } from '../../mail/parse/read.ts';
import { formatTag } from '../../mail/parse/subject.ts';
import type { DomainContext } from '../context.ts';
import { send, tellUnit } from '../notify.ts';
import { agentAction, mayAct, refusal, type AgentAction } from './actions.ts';
import { parseAgentMail, type CommandLine } from './commands.ts';
import { isValidReplyToken, replyTokensIn } from './reply-tokens.ts';
import { currentTicket, lastDoneBy, recordAttempt } from './transition.ts';

export const FLAG_UNVERIFIED_COMMANDS = 'unverified commands ignored';
export const FLAG_UNVERIFIED_REPLY = 'unverified sender: not sent to the requester';
export const FLAG_REFUSED = 'commands refused';

/** What an agent's mail on a ticket is, decided before its article is stored. */
export interface AgentMailPlan {
  /** The article text: the mail's new text without the command lines. */
  text: string;
  internal: boolean;
  /** Why the mail was not acted on, if so (also shown on the article). */
  flag: string | null;
  /** What to tell, for a flag. */
  problems: string[];
  actions: AgentAction[];
  /** Whether the mail reached us through this agent's reply address of this ticket. */
  verified: boolean;
  /** The first command, for the audit log of a refused or unverified mail. */
  firstCommand: string | null;
}

/**
 * Decides what an agent's mail does. Commands count only when the mail came to the reply
 * address made for this agent and this ticket (a forwarded notification, a spoofed From or
 * another agent's or ticket's address do not): otherwise the mail is kept as an internal note
 * and reaches nobody outside the unit. Unknown or not-allowed commands change nothing.
 */
export async function planAgentMail(
  ctx: DomainContext,
  ticket: Ticket,
  sender: string,
  recipients: string[],
  mail: { newText: string; commands: CommandLines },
  opts: { automated?: string | null; /** A re-run: the commands were accepted once; their transitions are idempotent. */ replay?: boolean } = {},
): Promise<AgentMailPlan> {
  const { newText } = mail;
  const parsed = parseAgentMail(mail.commands, ctx.units.all().map((u) => u.key));
  if (opts.automated) {
    // An agent's out-of-office answer: kept for the unit, acted on by nobody.
    return { text: newText.trim(), internal: true, flag: null, problems: [], actions: [], verified: false, firstCommand: null };
  }
  const tokens = replyTokensIn(ctx, recipients).filter((t) => t.number === ticket.number);
  let verified = false;
  for (const t of tokens) if (await isValidReplyToken(ctx, ticket, sender, t.token)) verified = true;
  const hasCommands = parsed.commands.length > 0;
  const text = hasCommands ? parsed.rest : newText.trim();
  const firstCommand = parsed.commands[0] ? (/^\/([A-Za-z]+)/.exec(parsed.commands[0].line)?.[1]?.toLowerCase() ?? 'command') : null;
  if (!verified) {
    return {
      text,
      internal: true,
      flag: hasCommands ? FLAG_UNVERIFIED_COMMANDS : FLAG_UNVERIFIED_REPLY,
      problems: [
        tokens.length || replyTokensIn(ctx, recipients).length
          ? `it was sent to a reply address that is not ${sender}'s for this ticket`
          : 'it was not sent to the reply address of a notification of this ticket',
      ],
      actions: [],
      verified,
      firstCommand,
    };
  }
  const problems = parsed.commands.filter((c): c is CommandLine & { error: string } => !!c.error).map((c) => `${c.line}: ${c.error}`);
  const actions = parsed.commands.map((c) => c.action).filter((a): a is AgentAction => !!a);
  if (!problems.length && !opts.replay) {
    if (!mayAct(ctx, ticket, sender)) problems.push(`${sender} is not an agent of ${ctx.units.get(ticket.su)?.name ?? ticket.su} or ${ctx.units.entry.name}`);
    else {
      // Check the commands in order against the ticket as each would leave it.
      let t = ticket;
      const actor: Actor = { address: sender, name: '', sub: null, role: 'agent' };
      for (const a of actions) {
        const why = refusal(ctx, t, a, actor);
        if (why) {
          problems.push(`/${a.kind}: ${why}${t === ticket ? await lastDoneBy(ctx, ticket, a.kind) : ''}`);
          break;
        }
        t = simulate(t, a, sender);
      }
    }
  }
  if (problems.length) return { text, internal: true, flag: FLAG_REFUSED, problems, actions: [], verified, firstCommand };
  // What the requester receives: a plain reply, the question (/waiting) or the solution (/solve).
  const internal = parsed.internal || (!text && actions.length > 0);
  if (!actions.length) actions.push({ kind: parsed.internal ? 'note' : 'reply' });
  return { text, internal, flag: null, problems: [], actions, verified, firstCommand };
}

function simulate(t: Ticket, a: AgentAction, sender: string): Ticket {
  switch (a.kind) {
    case 'take':
      return { ...t, assignee: { address: sender, name: '' }, state: 'in progress' };
    case 'assign':
      return { ...t, su: a.su, state: 'assigned', assignee: null };
    case 'priority':
      return { ...t, priority: a.priority };
    case 'waiting':
      return { ...t, state: 'waiting for reply' };
    case 'hold':
      return { ...t, state: 'on hold' };
    case 'solve':
      return { ...t, state: 'solved' };
    case 'close':
      return { ...t, state: 'closed' };
    case 'reopen':
      return { ...t, state: 'reopened' };
    default:
      return t;
  }
}

/** Carries out the plan once the article is stored. Safe to run again after a crash. */
export async function runAgentMail(ctx: DomainContext, ticket: Ticket, article: Article, plan: AgentMailPlan, actor: Actor): Promise<void> {
  const tag = formatTag(ctx.config.ticketPrefix, ticket.number);
  if (plan.flag && plan.firstCommand) {
    // The attempt is in the audit log, whatever made it fail.
    const reason = plan.flag === FLAG_REFUSED ? plan.problems.join('; ') : `${plan.flag}: ${plan.problems.join('; ')}`;
    await recordAttempt(ctx, ticket, { action: plan.firstCommand, op: `${article.key}#refused`, actor, channel: 'mail', articleId: article._id }, reason);
  }
  if (plan.flag === FLAG_UNVERIFIED_COMMANDS || plan.flag === FLAG_UNVERIFIED_REPLY) {
    await tellUnit(ctx, ticket, {
      key: String(article._id),
      kind: 'unverified',
      headline: `A mail from ${actor.address} on ${tag} was kept as an internal note: ${plan.flag === FLAG_UNVERIFIED_COMMANDS ? 'its commands were ignored and ' : ''}nothing was sent to the requester`,
      lines: [`Why: ${plan.problems.join('; ')}. To act on the ticket by mail, reply to a notification of it that you received yourself, or use the portal.`],
      article,
    });
    return;
  }
  if (plan.flag === FLAG_REFUSED) {
    await tellAgent(ctx, ticket, article, actor, plan.problems, 'Nothing was changed and nothing was sent to the requester; your mail is kept on the ticket as an internal note.');
    return;
  }
  const refused: string[] = [];
  let current = ticket;
  // The agent's words travel with one action: the assignment (to the new unit) or the note when
  // internal; otherwise /waiting, /solve, or the last action (a public reply).
  const carrier = plan.internal ? plan.actions.findIndex((a) => a.kind === 'assign' || a.kind === 'note') : lastTextAction(plan.actions);
  for (const [i, action] of plan.actions.entries()) {
    const result = await agentAction(ctx, current, action, { actor, channel: 'mail', op: `${article.key}#${i}` }, i === carrier ? article : null);
    if (result && !result.ok) {
      refused.push(`/${action.kind}: ${result.reason}`);
      // Its words were for the requester and never went: the portal must not show them as sent.
      if (i === carrier && !plan.internal) await ctx.store.models.Article.updateOne({ _id: article._id }, { $set: { internal: true, flag: `${FLAG_REFUSED}: ${result.reason}` } });
    }
    current = (await currentTicket(ctx, ticket._id)) ?? current;
  }
  if (plan.internal && carrier < 0 && plan.text) {
    await tellUnit(ctx, current, { key: String(article._id), kind: 'note', headline: `Internal note on ${tag} by ${actor.name || actor.address} (not sent to the requester)`, article, exclude: [actor.address] });
  }
  if (refused.length) await tellAgent(ctx, current, article, actor, refused, 'The commands before it were carried out.');
}

/** Which action carries a public text: /waiting or /solve if present, else the last one. */
function lastTextAction(actions: AgentAction[]): number {
  const special = actions.findIndex((a) => a.kind === 'waiting' || a.kind === 'solve');
  return special >= 0 ? special : actions.length - 1;
}

async function tellAgent(ctx: DomainContext, ticket: Ticket, article: Article, actor: Actor, problems: string[], outcome: string): Promise<void> {
  if (!actor.address) return;
  await send(ctx, ticket, article, {
    key: `${article._id}:command-refused:${actor.address}`,
    kind: 'command-refused',
    template: 'unit-event',
    to: [actor.address],
    fromName: ctx.config.helpdesk.name,
    automatic: true,
    inReplyTo: article.messageId,
    extra: { headline: `Your mail on ${formatTag(ctx.config.ticketPrefix, ticket.number)} was not carried out as written`, lines: [...problems.map((p) => `Refused: ${p}`), outcome] },
  });
}
