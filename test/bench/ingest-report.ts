import type { IntakeFigures, PipelineFigures, SingleFigures } from './ingest-phases.ts';
import { percentile } from './smtp-load.ts';

/** Issue 11's targets for bench:ingest. */
const TARGETS = {
  intakeRatio: 0.6,
  pipelineRate: 30,
  pipelineRatio: 0.06,
  writesPerNewTicket: 15,
  ackP50Ms: 300,
};

export interface EngineResult {
  name: string;
  label: string;
  intake: IntakeFigures;
  pipeline: PipelineFigures;
  singles: SingleFigures;
  /** Peak resident memory of the engine's processes. */
  children: { name: string; mb: number }[];
}

export interface EngineFailure {
  name: string;
  error: string;
}

export interface Ceiling {
  rate: number;
  seconds: number;
  replyP50: number;
  replyP99: number;
}

const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : 'n/a');
const mean = (xs: number[]) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : NaN);

/** The figures of one engine, printed as soon as its run ends. */
export function engineDetails(r: EngineResult, ceiling: Ceiling, count: number, deadlineMinutes: number): string[] {
  const { intake: i, pipeline: p, singles: s } = r;
  const lines = [
    `  SMTP intake alone                 ${i.rate.toFixed(1)} msgs/s (${i.seconds.toFixed(1)} s), ratio ${(i.rate / ceiling.rate).toFixed(3)}; end of DATA → 250 p50 / p99 ${ms(i.replyP50)} / ${ms(i.replyP99)}; ${i.writesPerMail.toFixed(2)} writes per mail; ${i.refused} refused`,
    p.finished
      ? `  full pipeline                     ${p.rate.toFixed(1)} msgs/s (${p.seconds.toFixed(1)} s until every article existed and every automatic mail was relayed), ratio ${(p.rate / ceiling.rate).toFixed(3)}`
      : `  full pipeline                     ${p.rate.toFixed(1)} msgs/s, NOT FINISHED: ${p.articles}/${count} articles after the ${deadlineMinutes} min deadline`,
    `    outcome: ${p.articles} articles in ${p.tickets} tickets; ${p.threadedReplies}/${p.replies} replies threaded by References; ${p.relayed} outbound mails relayed; ${p.refused} refused at DATA; ${p.notIngested} not ingested`,
    `    under this load: 250 → article stored p50 / p99 ${ms(percentile(p.articleLatency, 50))} / ${ms(percentile(p.articleLatency, 99))}; 250 → acknowledgement queued p50 / p99 ${ms(percentile(p.ackLatency, 50))} / ${ms(percentile(p.ackLatency, 99))}`,
    `    ${p.writesPerMail.toFixed(1)} write commands per ${p.finished ? 'mail' : 'stored article (run cut short)'} (new tickets and replies, outbound delivery included); engine: ${p.writeCeiling.toFixed(0)} durable single inserts/s at 8 concurrent → bound ≈ ${(p.writeCeiling / p.writesPerMail).toFixed(1)} msgs/s`,
    `  single new-ticket mails, no backlog (${s.writes.length} done${s.failures.length ? `; ${s.failures.length} failed: ${[...new Set(s.failures)].join('; ')}` : ''}${s.skipped ? `; ${s.skipped} not sent within the ${deadlineMinutes} min budget` : ''})`,
    `    250 → acknowledgement queued p50 / p95 ${ms(percentile(s.ackLatency, 50))} / ${ms(percentile(s.ackLatency, 95))}; 250 → article stored p50 ${ms(percentile(s.articleLatency, 50))}`,
    `    write commands per mail: mean ${mean(s.writes).toFixed(1)}, min ${Math.min(...s.writes)}, max ${Math.max(...s.writes)}; outbound mails per mail: ${[...new Set(s.outbound)].join(' or ')}`,
    ...r.children.map((c) => `  peak RSS of ${c.name.padEnd(20)} ${c.mb.toFixed(0)} MB`),
  ];
  if (p.commands.length) lines.push(`  database commands of the pipeline run (top by total time; /msg = per mail sent in)`, ...p.commands);
  if (p.commands.length && s.lastWrites.length) lines.push('  write commands of the last single new-ticket mail', ...s.lastWrites.map(([k, n]) => `  ${k.padEnd(52)} ${String(n).padStart(3)}`));
  return lines;
}

/** "met" or "missed", and by how much, for a figure that must reach `goal` (or stay under it). */
function verdict(value: number, goal: number, want: 'at least' | 'at most' | 'below', fmt: (x: number) => string): string {
  if (!Number.isFinite(value)) return 'n/a';
  const met = want === 'at least' ? value >= goal : want === 'at most' ? value <= goal : value < goal;
  const gap = fmt(Math.abs(value - goal));
  if (met) return `${fmt(value)} met (${gap} to spare)`;
  const factor = want === 'at least' ? goal / value : value / goal;
  return `${fmt(value)} MISSED by ${gap} (${factor.toFixed(1)}×)`;
}

/** One table: the engines as columns, a row per target saying met or missed and by how much. */
export function summaryTable(results: (EngineResult | EngineFailure)[], ceiling: Ceiling): string[] {
  const fixed = (d: number, unit = '') => (x: number) => `${x.toFixed(d)}${unit}`;
  const rows: [string, (r: EngineResult) => string][] = [
    ['engine', (r) => r.label],
    [`SMTP intake ratio ≥ ${TARGETS.intakeRatio}`, (r) => verdict(r.intake.rate / ceiling.rate, TARGETS.intakeRatio, 'at least', fixed(3))],
    [`pipeline ≥ ${TARGETS.pipelineRate} msgs/s`, (r) => verdict(r.pipeline.rate, TARGETS.pipelineRate, 'at least', fixed(1)) + (r.pipeline.finished ? '' : ' (unfinished)')],
    [`pipeline ratio ≥ ${TARGETS.pipelineRatio}`, (r) => verdict(r.pipeline.rate / ceiling.rate, TARGETS.pipelineRatio, 'at least', fixed(3))],
    [`writes per new-ticket mail ≤ ${TARGETS.writesPerNewTicket}`, (r) => verdict(mean(r.singles.writes), TARGETS.writesPerNewTicket, 'at most', fixed(1))],
    [`250 → ack queued p50 < ${TARGETS.ackP50Ms} ms`, (r) => verdict(percentile(r.singles.ackLatency, 50), TARGETS.ackP50Ms, 'below', fixed(0, ' ms'))],
    ['250 → ack queued p95', (r) => ms(percentile(r.singles.ackLatency, 95))],
    ['writes per mail, whole pipeline', (r) => r.pipeline.writesPerMail.toFixed(1)],
  ];
  const cells = rows.map(([name, cell]) => [name, ...results.map((r) => ('error' in r ? (name === 'engine' ? `FAILED: ${r.error}` : '') : cell(r)))]);
  const header = ['', ...results.map((r) => r.name)];
  const widths = header.map((_, c) => Math.max(...[header, ...cells].map((row) => row[c]!.length)));
  const line = (row: string[]) => `  ${row.map((cell, c) => cell.padEnd(widths[c]!)).join('   ')}`.trimEnd();
  return [`summary (ceiling: ${ceiling.rate.toFixed(1)} msgs/s)`, line(header), ...cells.map(line)];
}
