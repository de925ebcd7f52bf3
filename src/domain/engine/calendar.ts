/**
 * Working time, Monday to Friday, counted in UTC: GGUS timers ("after 5 working days") and
 * the SLA ("2 working days") are measured here. A weekend does not count; a start on a
 * weekend counts from Monday 00:00.
 */
const DAY = 86_400_000;

function isWeekend(t: number): boolean {
  const d = new Date(t).getUTCDay();
  return d === 0 || d === 6;
}

/** The moment `days` working days (fractions allowed) after `from`. */
export function addWorkingDays(from: Date, days: number): Date {
  let t = from.getTime();
  // A start on a weekend: the clock starts on Monday at midnight.
  while (isWeekend(t)) t = Math.floor(t / DAY) * DAY + DAY;
  let left = Math.round(days * DAY);
  while (left > 0) {
    const endOfDay = Math.floor(t / DAY) * DAY + DAY;
    const step = Math.min(left, endOfDay - t);
    t += step;
    left -= step;
    if (left > 0) while (isWeekend(t)) t += DAY;
  }
  return new Date(t);
}

/** Working days between two moments (negative if `to` is earlier). */
export function workingDaysBetween(from: Date, to: Date): number {
  if (to < from) return -workingDaysBetween(to, from);
  let t = from.getTime();
  const end = to.getTime();
  let ms = 0;
  while (t < end) {
    const endOfDay = Math.min(end, Math.floor(t / DAY) * DAY + DAY);
    if (!isWeekend(t)) ms += endOfDay - t;
    t = endOfDay;
  }
  return ms / DAY;
}
