import { z } from 'zod';
import { PRIORITIES, TICKET_STATES } from '../../domain/portal/web-tickets.ts';

/**
 * What the portal's forms and query strings may contain, as zod schemas: every problem is named
 * by its field, in words for the person who filled the form in. The domain gets typed values.
 */

/** The random id a form carries from the moment it was shown (pressing twice acts once). */
export const SUBMISSION = /^[A-Za-z0-9_-]{16,64}$/;
const submission = z.string().regex(SUBMISSION, 'The form expired: reload the page and try again.');

/** A form field as sent; a field that was not sent at all is empty. */
const field = z
  .string()
  .optional()
  .transform((s) => s ?? '');
/** Text from a textarea: Windows line ends as the rest, no blank margin. */
const multiline = field.transform((s) => s.replace(/\r\n?/g, '\n').trim());
const longText = (what: string) => multiline.pipe(z.string().max(100_000, `${what} is at most 100,000 characters.`));
const priority = z.preprocess((v) => v || 'less urgent', z.enum(PRIORITIES, { error: 'Choose one of the listed priorities.' }));

export function newTicketForm(categories: readonly string[]) {
  return z.object({
    submission,
    subject: field
      .transform((s) => s.replace(/[\r\n]+/g, ' ').trim())
      .pipe(z.string().min(1, 'Enter a subject.').max(200, 'Subject is at most 200 characters.')),
    category: field.refine((c) => categories.includes(c), 'Choose a category.'),
    description: multiline.pipe(z.string().min(1, 'Describe your request.').max(100_000, 'Description is at most 100,000 characters.')),
    priority,
  });
}

/** A reply (the requester's form, or an agent's public reply): words, files, or both. `files`: how many files go with it. */
export const replyForm = z
  .object({ submission, text: longText('A reply'), files: z.number() })
  .refine((f) => f.text || f.files > 0, { path: ['text'], message: 'Write a reply or attach a file.' });

/** The composer's modes on an agent's ticket page. */
export const COMPOSER_MODES = ['reply', 'note', 'waiting', 'solve'] as const;
export type ComposerMode = (typeof COMPOSER_MODES)[number];

const version = z
  .string()
  .regex(/^\d{1,9}$/, 'The form expired: reload the page and try again.')
  .transform(Number);

const composed = (mode: ComposerMode, needed: string) =>
  z
    .object({ action: z.literal(mode), submission, version, text: longText('A text'), files: z.number() })
    // A note may be only a file; what goes to the requester needs words.
    .refine((f) => f.text || (mode === 'note' && f.files > 0), { path: ['text'], message: needed });

/** Every form that posts to a ticket's /act: the composer, the state buttons, assign, priority. */
export function agentForm(unitKeys: readonly string[]) {
  const plain = (action: 'take' | 'hold' | 'close' | 'reopen') => z.object({ action: z.literal(action), submission, version });
  return z.discriminatedUnion(
    'action',
    [
      composed('reply', 'Write the reply.'),
      composed('note', 'Write the note, or attach a file.'),
      composed('waiting', 'Write what you need to know from the requester.'),
      composed('solve', 'Write the solution.'),
      plain('take'),
      plain('hold'),
      plain('close'),
      plain('reopen'),
      z.object({
        action: z.literal('assign'),
        submission,
        version,
        su: field.refine((s) => unitKeys.includes(s), 'Choose one of the listed Support Units.'),
        comment: longText('A handover comment'),
      }),
      z.object({ action: z.literal('priority'), submission, version, priority }),
    ],
    { error: 'Choose what to do: that action is not known.' },
  );
}
export type AgentForm = z.output<ReturnType<typeof agentForm>>;

/** A queue's filters from its query string: a value that is not one of the choices means "no filter". */
export const queueQuery = z.object({
  state: z.enum(['active', 'all', ...TICKET_STATES]).catch('active'),
  priority: z.enum(['', ...PRIORITIES]).catch(''),
  assignee: z
    .string()
    .transform((s) => s.slice(0, 254).toLowerCase())
    .catch(''),
  sla: z.enum(['', 'due', 'overdue']).catch(''),
  scope: z.enum(['now', 'seen']).catch('now'),
});

/** My tickets: search text, state, page. */
export const ticketListQuery = z.object({
  q: z
    .string()
    .transform((s) => s.slice(0, 200))
    .catch(''),
  state: z.enum(['', ...TICKET_STATES]).catch(''),
  page: z.coerce.number().int().min(1).max(10_000).catch(1),
});

export type Checked<T> = { ok: true; value: T } | { ok: false; errors: Record<string, string> };

/** Runs a schema; the errors by field (the first problem of each), `form` for the form as a whole. */
export function check<S extends z.ZodType>(schema: S, input: unknown): Checked<z.output<S>> {
  const result = schema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  const errors: Record<string, string> = {};
  for (const issue of result.error.issues) {
    const field = issue.path.length ? String(issue.path[0]) : 'form';
    errors[field] ??= issue.message;
  }
  return { ok: false, errors };
}
