import { PRIORITIES, type Priority } from '../../db/models/ticket.ts';
import type { CommandLines } from '../../mail/parse/read.ts';
import type { AgentAction } from './actions.ts';

/** One command line at the top of an agent's mail. */
export interface CommandLine {
  line: string;
  /** The action, or null for /note (which only makes the rest internal). */
  action: AgentAction | null;
  error: string | null;
}

export interface AgentMail {
  commands: CommandLine[];
  /** The text after the commands. */
  rest: string;
  /** Whether the rest is an internal note (for /note, and the comment of an /assign). */
  internal: boolean;
}

const NO_ARGUMENT = ['take', 'waiting', 'solve', 'hold', 'close', 'reopen'] as const;

function priorityOf(words: string): Priority | null {
  const norm = words.toLowerCase().replace(/[-_]+/g, ' ').replace(/\s+/g, ' ').trim();
  return PRIORITIES.find((p) => p === norm) ?? null;
}

/**
 * Reads the command lines at the top of an agent's mail (split off by mail/parse/read.ts):
 * /note, /assign <unit>, /take, /waiting, /solve, /hold, /close, /reopen, /priority <level>.
 */
export function parseAgentMail(split: CommandLines, unitKeys: readonly string[]): AgentMail {
  const commands = split.lines.map((line) => readCommand(line, unitKeys));
  const internal = commands.some((c) => c.line.toLowerCase().startsWith('/note') || c.action?.kind === 'assign');
  return { commands, rest: split.rest, internal };
}

function readCommand(line: string, unitKeys: readonly string[]): CommandLine {
  const m = /^\/([A-Za-z]+)(?:\s+(.*))?$/.exec(line);
  const shown = line.length > 80 ? `${line.slice(0, 80)}…` : line;
  if (!m) return { line, action: null, error: `"${shown}" is not a command` };
  const name = m[1]!.toLowerCase();
  const arg = (m[2] ?? '').trim();
  if (name === 'note') return { line, action: null, error: null };
  if ((NO_ARGUMENT as readonly string[]).includes(name)) {
    return { line, action: { kind: name as (typeof NO_ARGUMENT)[number] }, error: arg ? `/${name} takes no argument (the text for it goes below the commands)` : null };
  }
  if (name === 'assign') {
    const key = arg.toLowerCase();
    if (!key) return { line, action: null, error: `/assign needs a unit: ${unitKeys.join(', ')}` };
    if (!unitKeys.includes(key)) return { line, action: null, error: `there is no unit "${arg}"; the units are: ${unitKeys.join(', ')}` };
    return { line, action: { kind: 'assign', su: key }, error: null };
  }
  if (name === 'priority') {
    const priority = priorityOf(arg);
    if (!priority) return { line, action: null, error: `/priority needs one of: ${PRIORITIES.join(', ')}` };
    return { line, action: { kind: 'priority', priority }, error: null };
  }
  return { line, action: null, error: `unknown command "/${name}"; the commands are /note, /assign, /take, /waiting, /solve, /hold, /close, /reopen, /priority` };
}
