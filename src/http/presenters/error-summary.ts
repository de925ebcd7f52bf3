/** One line of a form's error summary: the message, and the field it links to. */
export interface SummaryItem {
  message: string;
  /** "#id" of the field; null when the problem is the form as a whole. */
  href: string | null;
}

/**
 * The error summary at the top of a re-shown form (the GOV.UK pattern): every problem, in the
 * order of the form's fields, each a link to its field. `fields`: field name → element id, in
 * the form's order.
 */
export function errorSummary(errors: Record<string, string>, fields: Record<string, string>): SummaryItem[] {
  const items: SummaryItem[] = [];
  if (errors.form) items.push({ message: errors.form, href: fields.form ? `#${fields.form}` : null });
  for (const [name, id] of Object.entries(fields)) if (name !== 'form' && errors[name]) items.push({ message: errors[name]!, href: `#${id}` });
  for (const [name, message] of Object.entries(errors)) if (name !== 'form' && !fields[name]) items.push({ message, href: null });
  // One line per problem: the same words for two fields (an expired form) are said once.
  return items.filter((item, i) => items.findIndex((other) => other.message === item.message) === i);
}
