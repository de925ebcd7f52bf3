import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * helpgate's Prometheus metrics (prom-client), in one registry per process. Counters and
 * histograms are moved where things happen (intake, ingest, delivery, portal); the gauges of
 * what the database holds (queue depths, held mail, timers) are read when Prometheus scrapes,
 * by the collector main.ts registers (`setDatabaseCollector`). docs/operations.md lists them
 * with example alerts. Metric names are part of the operator's interface: change them only
 * with a note there.
 */
export const registry = new Registry();

const seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export const metrics = {
  /** Answers the intakes gave: SMTP reply codes; IMAP as the same codes (250 stored, 451 left for later, 552 too large). */
  intakeReplies: new Counter({ name: 'helpgate_intake_replies_total', help: 'Replies given to incoming mail, by intake channel and SMTP reply code', labelNames: ['channel', 'code'] as const, registers: [registry] }),
  messageSize: new Histogram({
    name: 'helpgate_intake_message_size_bytes',
    help: 'Size of the messages taken in, by intake channel',
    labelNames: ['channel'] as const,
    buckets: [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864],
    registers: [registry],
  }),
  ingestLatency: new Histogram({ name: 'helpgate_ingest_latency_seconds', help: 'From a message stored (250) to its article written', buckets: seconds, registers: [registry] }),
  ingestOutcomes: new Counter({ name: 'helpgate_ingest_outcomes_total', help: 'Stored messages processed, by outcome (ticket, ignored, held, quarantined, retry)', labelNames: ['outcome'] as const, registers: [registry] }),
  deliveryAttempts: new Counter({
    name: 'helpgate_delivery_attempts_total',
    help: 'Outbound delivery attempts, by result (sent, captured, deferred, failed) and failure class (none, 4xx, 5xx, connection)',
    labelNames: ['result', 'class'] as const,
    registers: [registry],
  }),
  bounces: new Counter({ name: 'helpgate_bounces_total', help: 'Delivery status notifications matched to our outbound mail, by action (failed, delayed)', labelNames: ['action'] as const, registers: [registry] }),
  slaEscalations: new Counter({ name: 'helpgate_sla_escalations_total', help: 'First-response targets missed (escalation mails sent by this process)', registers: [registry] }),
  timersRun: new Counter({ name: 'helpgate_timers_run_total', help: 'GGUS timers run by this process', registers: [registry] }),
  httpDuration: new Histogram({ name: 'helpgate_http_request_duration_seconds', help: 'Portal requests, by route, method and status', labelNames: ['route', 'method', 'status'] as const, buckets: seconds, registers: [registry] }),
  signIns: new Counter({ name: 'helpgate_sign_ins_total', help: 'Portal sign-ins, by result (ok, not_authorised, cancelled, failed)', labelNames: ['result'] as const, registers: [registry] }),
  retention: new Counter({ name: 'helpgate_retention_removed_total', help: 'Documents removed by the retention rules, by kind', labelNames: ['kind'] as const, registers: [registry] }),
};

/** What the database holds, read at scrape time. */
export interface DatabaseFigures {
  inboxQueueDepth: number;
  inboxOldestSeconds: number;
  inboxByState: Record<string, number>;
  outboxByState: Record<string, number>;
  outboxQueueDepth: number;
  heldMails: number;
  imap: { mailbox: string; backlog: number; lastReportSeconds: number }[];
  timersDue: number;
  timersLate: number;
  slaBreachedTickets: number;
}

const gauges = {
  inboxQueueDepth: new Gauge({ name: 'helpgate_inbox_queue_depth', help: 'Stored messages waiting for ingest', registers: [registry] }),
  inboxOldest: new Gauge({ name: 'helpgate_inbox_oldest_age_seconds', help: 'Age of the oldest stored message still waiting for ingest', registers: [registry] }),
  inbox: new Gauge({ name: 'helpgate_inbox_messages', help: 'Stored messages by state (pending, done, ignored, held, expired, quarantined)', labelNames: ['state'] as const, registers: [registry] }),
  quarantined: new Gauge({ name: 'helpgate_inbox_quarantined', help: 'Messages that failed ingest INGEST_MAX_ATTEMPTS times', registers: [registry] }),
  held: new Gauge({ name: 'helpgate_held_mails', help: 'Mail held until its sender signs in (UNBOUND_SENDERS=hold)', registers: [registry] }),
  outbox: new Gauge({ name: 'helpgate_outbox_mails', help: 'Outbound mail by state (queued, sent, captured, failed)', labelNames: ['state'] as const, registers: [registry] }),
  outboxQueueDepth: new Gauge({ name: 'helpgate_outbox_queue_depth', help: 'Outbound mail waiting to be sent (due or retrying)', registers: [registry] }),
  imapBacklog: new Gauge({ name: 'helpgate_imap_backlog', help: 'Messages in a mailbox not yet taken in', labelNames: ['mailbox'] as const, registers: [registry] }),
  imapLag: new Gauge({ name: 'helpgate_imap_last_report_age_seconds', help: 'Seconds since a mailbox reader last reported', labelNames: ['mailbox'] as const, registers: [registry] }),
  timersDue: new Gauge({ name: 'helpgate_timers_due', help: 'GGUS timers due now', registers: [registry] }),
  timersLate: new Gauge({ name: 'helpgate_timers_late', help: 'GGUS timers due for longer than two timer intervals', registers: [registry] }),
  slaBreached: new Gauge({ name: 'helpgate_sla_breached_tickets', help: 'Open tickets past their first-response target without a first response', registers: [registry] }),
  up: new Gauge({ name: 'helpgate_database_up', help: '1 when the last scrape could read the database', registers: [registry] }),
};

let collect: (() => Promise<DatabaseFigures>) | null = null;

/**
 * Registers how the database figures are read (main.ts); without one, they are left out.
 * `null, previous` removes `previous` only if it is still the one registered.
 */
export function setDatabaseCollector(fn: (() => Promise<DatabaseFigures>) | null, previous?: () => Promise<DatabaseFigures>): void {
  if (fn === null && previous && collect !== previous) return;
  collect = fn;
}

function setAll(gauge: Gauge<'state'>, values: Record<string, number>): void {
  gauge.reset();
  for (const [state, n] of Object.entries(values)) gauge.set({ state }, n);
}

/** The exposition text (Prometheus format), the database figures read now. */
export async function scrape(): Promise<{ contentType: string; body: string }> {
  if (collect) {
    try {
      const f = await collect();
      gauges.inboxQueueDepth.set(f.inboxQueueDepth);
      gauges.inboxOldest.set(f.inboxOldestSeconds);
      setAll(gauges.inbox, f.inboxByState);
      gauges.quarantined.set(f.inboxByState.quarantined ?? 0);
      gauges.held.set(f.heldMails);
      setAll(gauges.outbox, f.outboxByState);
      gauges.outboxQueueDepth.set(f.outboxQueueDepth);
      gauges.imapBacklog.reset();
      gauges.imapLag.reset();
      for (const m of f.imap) {
        gauges.imapBacklog.set({ mailbox: m.mailbox }, m.backlog);
        gauges.imapLag.set({ mailbox: m.mailbox }, m.lastReportSeconds);
      }
      gauges.timersDue.set(f.timersDue);
      gauges.timersLate.set(f.timersLate);
      gauges.slaBreached.set(f.slaBreachedTickets);
      gauges.up.set(1);
    } catch {
      gauges.up.set(0);
    }
  }
  return { contentType: registry.contentType, body: await registry.metrics() };
}

/** Delivery failure class of an SMTP error, for helpgate_delivery_attempts_total. */
export function failureClass(responseCode: unknown): '4xx' | '5xx' | 'connection' {
  if (typeof responseCode === 'number' && responseCode >= 500) return '5xx';
  if (typeof responseCode === 'number' && responseCode >= 400) return '4xx';
  return 'connection';
}
