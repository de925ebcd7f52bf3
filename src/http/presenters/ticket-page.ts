import type { AgentTicketView } from '../../domain/portal/agent-view.ts';
import type { Article, TicketPage } from '../../domain/portal/web-tickets.ts';
import type { HeldFile } from '../forms/held-files.ts';
import type { ComposerMode } from '../forms/schemas.ts';
import { auditEntry, timerLabel, type AuditEntry, type UnitNames } from './audit.ts';
import { errorSummary, type SummaryItem } from './error-summary.ts';
import type { SenderMark } from '../../domain/portal/sender-marks.ts';
import { formatSize } from './format.ts';

/** Which of the ticket page's forms was sent and not accepted, and what it held. */
export interface TicketForms {
  sent?: 'composer' | 'assign' | 'priority' | 'state' | 'reply';
  errors?: Record<string, string>;
  values?: Record<string, string>;
  held?: HeldFile[];
  submission?: string;
  status?: number;
}

/** The label an article carries, by the action it was written with. */
const ARTICLE_LABELS: Record<string, string> = {
  waiting: 'Request for information',
  solve: 'Solution',
  hold: 'Put on hold',
  close: 'Closed',
  assign: 'Assignment',
  reopen: 'Reopened',
};

export interface ArticleView extends Article {
  id: string;
  /** Sanitised HTML, or null to show the text. */
  html: string | null;
  label: string | null;
  /** The solution: marked for everyone, so the requester finds it at a glance. */
  solution: boolean;
  author: string;
  /** For agents: the sender-verification mark of a received mail; null for others and for our own. */
  sender: SenderMark | null;
}

export function articleView(a: Article, html: string | null, action: string | undefined, sender: SenderMark | null = null): ArticleView {
  const label = a.internal ? (action === 'assign' ? 'Handover note' : 'Internal note') : action ? (ARTICLE_LABELS[action] ?? null) : null;
  const author = (a.from && (a.from.name || a.from.address)) || (a.authorRole === 'system' ? 'helpgate' : a.authorRole);
  return { ...a, id: String(a._id), html, label, solution: !a.internal && action === 'solve', author, sender };
}

/** The composer's modes, in the order of the switch. */
const MODES: { value: ComposerMode; label: string; hint: string; button: string }[] = [
  { value: 'reply', label: 'Public reply', hint: 'Mailed to the requester and shown on their page.', button: 'Send reply' },
  { value: 'note', label: 'Internal note', hint: 'For the Support Units only: mailed to the unit, never shown or sent to the requester.', button: 'Add internal note' },
  { value: 'waiting', label: 'Request information', hint: 'Mailed to the requester; the ticket then waits for their reply (reminders follow).', button: 'Request information' },
  { value: 'solve', label: 'Solution', hint: 'Mailed to the requester, who can confirm it or reopen the ticket; the ticket is solved.', button: 'Solve the ticket' },
];

export interface AgentPanel {
  version: number;
  cannotAct: string | null;
  offered: Record<string, boolean>;
  /** The units a ticket can be assigned to (not its own). */
  otherUnits: { key: string; name: string }[];
  sla: AgentTicketView['sla'];
  timers: { label: string; due: Date }[];
  log: AuditEntry[];
  modes: typeof MODES;
  /** The mode checked when the page is shown. */
  mode: ComposerMode;
  bouncing: AgentTicketView['bouncing'];
}

export function agentPanel(view: AgentTicketView, su: string, unit: UnitNames, entryUnit: string, forms: TicketForms): AgentPanel {
  const modes = MODES.filter((m) => view.offered[m.value]);
  const posted = forms.sent === 'composer' ? forms.values?.action : undefined;
  const name = unit(su);
  return {
    version: view.version,
    cannotAct: view.canAct ? null : `This ticket is now with ${name}: you can read it, but only ${name} or ${entryUnit} can act on it.`,
    offered: view.offered,
    otherUnits: view.units.filter((u) => u.key !== su),
    sla: view.sla,
    timers: view.timers.map((t) => ({ label: timerLabel(t.kind), due: t.due })),
    log: view.events.map((e) => auditEntry(unit, e)),
    modes,
    mode: modes.find((m) => m.value === posted)?.value ?? modes[0]?.value ?? 'note',
    bouncing: view.bouncing,
  };
}

/** Element ids of each form's fields, in the form's order: where the error summary links to. */
const FIELD_IDS: Record<NonNullable<TicketForms['sent']>, Record<string, string>> = {
  composer: { form: 'composer-heading', action: 'mode-reply', text: 'composer-text', files: 'composer-attachments' },
  assign: { form: 'assign-su', su: 'assign-su', comment: 'assign-comment' },
  priority: { form: 'priority-select', priority: 'priority-select' },
  state: {},
  reply: { form: 'reply-heading', text: 'text', files: 'reply-attachments' },
};

export interface FormsView {
  sent: TicketForms['sent'] | null;
  errors: Record<string, string>;
  values: Record<string, string>;
  held: (HeldFile & { sizeText: string })[];
  submission: string;
  summary: SummaryItem[];
}

export function formsView(forms: TicketForms, submission: string): FormsView {
  const errors = forms.errors ?? {};
  return {
    sent: forms.sent ?? null,
    errors,
    values: forms.values ?? {},
    held: (forms.held ?? []).map((f) => ({ ...f, sizeText: formatSize(f.size) })),
    submission,
    summary: forms.sent ? errorSummary(errors, FIELD_IDS[forms.sent]) : [],
  };
}

export type { TicketPage };
