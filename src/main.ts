import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { projectRoot, type Config } from './config/load.ts';
import { resolveDatabase, type DatabaseServer } from './db/embedded.ts';
import { openStore, type Store } from './db/store.ts';
import { createDomainContext, type DomainContext } from './domain/context.ts';
import { recordDeliveryFailure } from './domain/delivery.ts';
import { redactLinkTokens } from './domain/identity/tokens.ts';
import { dkimSigning } from './domain/outbound/dkim.ts';
import { IngestWorker } from './domain/ingest/worker.ts';
import { createLogger, type Logger } from './log/logger.ts';
import { SmtpIntake } from './mail/receive/smtp.ts';
import { MailComposer } from './mail/send/compose.ts';
import { OutboxWorker } from './mail/send/worker.ts';
import { devAaiClientFor } from './dev-aai/client.ts';
import { startDevAai, type DevAai } from './dev-aai/server.ts';
import { createPortalApp, listenPortal, type RunningPortal } from './http/app.ts';
import { expireHeldMail } from './domain/identity/held.ts';
import { sweepSessions } from './domain/portal/sessions.ts';
import { PollLoop } from './jobs/poll-loop.ts';
import { errorMessage } from './errors/errors.ts';
import { runDueTimers, TIMER_BATCH, type TimerPass } from './domain/engine/timers.ts';
import { randomBytes } from 'node:crypto';
import { startImapReaders, type ImapReader } from './mail/receive/imap.ts';
import { IntakeStatusReporter, hostName } from './db/intake-status.ts';
import { answerIntakeNotices } from './domain/intake-notices.ts';
import { requeueStrandedWork } from './db/queue-repair.ts';
import { databaseFigures, oldestDueOutboxSeconds, probeDatabase } from './db/figures.ts';
import { Readiness } from './jobs/readiness.ts';
import { metrics, setDatabaseCollector } from './log/metrics.ts';
import { probes } from './http/probes.ts';
import { reporterId } from './db/intake-status.ts';
import { FINISHED_STATES } from './domain/engine/actions.ts';
import Koa from 'koa';
import type { DnsResolver } from './mail/auth/dns.ts';
import { runDailyPrivacyJob } from './domain/privacy/daily.ts';
import type { PrivacyRun } from './db/models/privacy.ts';

export interface Helpgate {
  readonly config: Config;
  readonly database: DatabaseServer;
  readonly store: Store;
  readonly ctx: DomainContext;
  readonly smtp: { host: string; port: number };
  readonly ingest: IngestWorker;
  readonly outbox: OutboxWorker;
  /** The web portal, unless started with portal: false. */
  readonly portal: RunningPortal | null;
  /** The dev LS AAI stand-in, when no OIDC_ISSUER is configured. */
  readonly devAai: DevAai | null;
  /** The GGUS timers of this process: `runDue()` runs what is due now (as the loop does every TIMER_INTERVAL_SECONDS). */
  readonly timers: { runDue(): Promise<TimerPass>; /** Timers run by this process since start (loop and runDue). */ ran(): number };
  /** One reader per configured mailbox (config.mailboxes). */
  readonly imap: readonly ImapReader[];
  /** Database, SMTP, workers and outbox checks: what /readyz answers. */
  readonly readiness: Readiness;
  /** The Prometheus listener of METRICS_PORT, when configured. */
  readonly metricsServer: RunningPortal | null;
  /** The daily data-protection job (retention rules, erasures past their grace period): `runNow()` runs it at once, as of ctx.now(). */
  readonly privacy: { runNow(): Promise<PrivacyRun | null> };
  stop(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Use this database server instead of resolving one from the configuration. */
  database?: DatabaseServer;
  dbName?: string;
  now?: () => Date;
  /** Start the portal (and the dev LS AAI when no issuer is configured); default true. */
  portal?: boolean;
  /** DNS for sender verification instead of the system's resolvers (tests answer from fixture records). */
  dns?: DnsResolver;
}

/** A worker step running longer than this makes the process not ready. */
const WORKER_STUCK_MS = 10 * 60_000;

/** Wires config → database → store → workers → SMTP listener. The only place that knows them all. */
export async function startHelpgate(config: Config, opts: StartOptions = {}): Promise<Helpgate> {
  const log = opts.log ?? createLogger(config.logLevel);
  mkdirSync(config.dataDir, { recursive: true });
  const database =
    opts.database ??
    (await resolveDatabase({
      mongodbUri: config.mongodbUri,
      dataDir: config.dataDir,
      toolsDir: config.toolsDir,
      engine: config.engine ?? undefined,
      restartWithinMs: config.engineRestartSeconds * 1000,
      log: (line) => log.warn({ component: 'database' }, line),
      // A database that cannot be brought back: exit non-zero, so that a supervisor restarts
      // helpgate (the engine's processes end with it, see db/engine/tether.ts).
      onGiveUp: (err) => {
        log.fatal({ component: 'database', err: err.message }, 'the database is down and could not be restarted: exiting');
        process.exit(1);
      },
    }));
  const ownsDatabase = !opts.database;
  const store = await openStore(database.uri, { timeoutMs: config.mongodbTimeoutMs, ...(opts.dbName ? { dbName: opts.dbName } : {}) });
  const composer = new MailComposer(path.join(projectRoot, 'templates'));

  let ctx!: DomainContext;
  // A DKIM key file that cannot be used stops the start, before anything listens.
  const dkim = await dkimSigning(store, config).catch(async (err: unknown) => {
    await store.close();
    if (ownsDatabase) await database.stop();
    throw err;
  });
  const outbox = new OutboxWorker({
    store,
    log,
    relayUrl: config.outboundSmtpUrl,
    backoffSeconds: config.outbox.backoffSeconds,
    leaseSeconds: config.outbox.leaseSeconds,
    onFailed: (mail, error) => recordDeliveryFailure(ctx, mail, error),
    dkim,
    redact: redactLinkTokens,
  });
  ctx = createDomainContext({ store, config, log, composer, mailQueued: () => outbox.kick(), ...(opts.now ? { now: opts.now } : {}), ...(opts.dns ? { dns: opts.dns } : {}) });
  const ingest = new IngestWorker(ctx);
  let smtpStatus: IntakeStatusReporter | null = null;
  let readiness: Readiness | null = null;
  const smtpIntake = new SmtpIntake({
    store,
    log,
    recipients: ctx.own,
    maxMessageSize: config.maxMessageSize,
    hostname: config.helpdesk.domain,
    // The database failed its last readiness probe: 421, so that the client keeps the mail.
    notReady: () => {
      const why = readiness?.failing('database');
      return why ? Object.assign(new Error(`4.3.2 Not accepting mail right now (the database is unavailable), try again later`), { responseCode: 421 }) : null;
    },
    limits: { maxClients: config.smtp.maxClients, maxClientsPerAddress: config.smtp.maxClientsPerAddress, idleSeconds: config.smtp.idleSeconds, maxJunkCommands: config.smtp.maxJunkCommands },
    onStored: () => {
      smtpStatus?.messageStored();
      ingest.kick();
    },
  });
  const address = await smtpIntake.listen(config.smtp.port, config.smtp.host);
  smtpStatus = new IntakeStatusReporter(store.models.IntakeStatus, `smtp:${hostName}:${address.port}`, 'smtp', {
    onError: (err) => log.warn({ err }, 'could not record the SMTP intake status'),
  });
  smtpStatus.set({ state: 'listening', detail: `smtp://${address.address}:${address.port}` });
  smtpStatus.startHeartbeat();
  ingest.start();
  if (!config.outbox.hold) outbox.start();
  else log.warn('OUTBOX_HOLD=true: outbound mail is queued but not sent by this process');
  // Mail the intakes could not take but whose senders are told (too large for MAX_MESSAGE_SIZE).
  const intakeNotices = new PollLoop({
    name: 'intake-notices',
    step: () => answerIntakeNotices(ctx),
    idleMs: 30_000,
    onError: (err) => log.error({ err: errorMessage(err) }, 'intake notices failed'),
  });
  intakeNotices.start();
  const imap = startImapReaders({
    store,
    log,
    mailboxes: config.mailboxes,
    settings: config.imap,
    maxMessageSize: config.maxMessageSize,
    recipient: config.helpdesk.address,
    onStored: () => ingest.kick(),
    onNotice: () => intakeNotices.kick(),
  });

  readiness = new Readiness({
    intervalMs: 5000,
    timeoutMs: Math.max(2000, config.mongodbTimeoutMs),
    onChange: (name, r) => (r.ok ? log.info({ check: name, detail: r.detail }, 'readiness check passes') : log.warn({ check: name, detail: r.detail }, 'readiness check fails')),
    checks: {
      database: async () => {
        const started = Date.now();
        await probeDatabase(store, reporterId);
        return `read and written in ${Date.now() - started} ms`;
      },
      smtp: async () => {
        if (!smtpIntake.listening) throw new Error('the SMTP listener is closed');
        return `listening on ${address.address}:${address.port}`;
      },
      workers: async () => {
        const loops = { ingest: ingest.health(), timers: timerLoop.health(), ...(config.outbox.hold ? {} : { outbox: outbox.health() }) };
        for (const [name, h] of Object.entries(loops)) {
          if (!h.running) throw new Error(`the ${name} worker is not running`);
          if (h.busyForMs > WORKER_STUCK_MS) throw new Error(`the ${name} worker has been busy with one step for ${Math.round(h.busyForMs / 1000)} s`);
        }
        return `${Object.keys(loops).join(', ')} running${config.outbox.hold ? ' (outbox held: OUTBOX_HOLD)' : ''}`;
      },
      outbox: async () => {
        const waiting = await oldestDueOutboxSeconds(store, ctx.now());
        if (!config.outbox.hold && waiting > config.outbox.stalledSeconds) throw new Error(`stalled: outbound mail due for ${Math.round(waiting)} s (OUTBOX_STALLED_SECONDS ${config.outbox.stalledSeconds})`);
        return waiting ? `oldest due mail waiting ${Math.round(waiting)} s` : 'nothing due';
      },
    },
  });
  let devAai: DevAai | null = null;
  let portal: RunningPortal | null = null;
  if (opts.portal !== false) {
    if (!config.oidc.issuer) {
      devAai = await startDevAai({
        host: config.devAai.host,
        port: config.devAai.port,
        usersFile: config.devAai.usersFile,
        clients: [devAaiClientFor(config)],
        log: log.child({ component: 'dev-aai' }),
        keysFile: path.join(config.dataDir, 'dev-aai-keys.json'),
      });
    }
    const app = createPortalApp({
      domain: ctx,
      config,
      log: log.child({ component: 'portal' }),
      issuer: config.oidc.issuer ?? devAai!.issuer,
      allowInsecureIssuer: !config.oidc.issuer,
      templatesDir: path.join(projectRoot, 'templates'),
      webDir: path.join(projectRoot, 'web'),
      readiness,
    });
    portal = await listenPortal(app, config.http.host, config.http.port);
  }
  // Housekeeping shared by every instance: expired sessions, held mail past HOLD_DAYS, and
  // pending mail that lost its queue entry (a crash between two writes) put back in its queue.
  const housekeeping = new PollLoop({
    name: 'housekeeping',
    step: async () => {
      await sweepSessions(ctx);
      await expireHeldMail(ctx);
      const requeued = await requeueStrandedWork(store, ctx.now());
      if (requeued.inbox || requeued.outbox) {
        log.warn(requeued, 'work without a queue entry was queued again');
        ingest.kick();
        outbox.kick();
      }
      return false;
    },
    concurrency: 1,
    idleMs: 10 * 60_000,
    onError: (err) => log.error({ err: errorMessage(err) }, 'housekeeping failed'),
  });
  housekeeping.start();
  // The data-protection job: checked hourly, run once a day by one of the processes (domain/privacy/daily.ts).
  const privacyOwner = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const privacyJob = new PollLoop({
    name: 'privacy',
    step: async () => {
      await runDailyPrivacyJob(ctx, privacyOwner);
      return false;
    },
    idleMs: 3600_000,
    onError: (err) => log.error({ err: errorMessage(err) }, 'the daily data-protection job failed'),
  });
  privacyJob.start();
  // GGUS timers (reminders, unsolved, close, SLA escalation): every process runs them, each
  // due timer once (engine/timers.ts); the first pass at start catches what fell due while down.
  const timerOwner = `${process.pid}-${randomBytes(4).toString('hex')}`;
  let timersRan = 0;
  const runDue = async () => {
    const pass = await runDueTimers(ctx, timerOwner);
    timersRan += pass.ran;
    metrics.timersRun.inc(pass.ran);
    return pass;
  };
  const timerLoop = new PollLoop({
    name: 'timers',
    step: async () => (await runDue()).due >= TIMER_BATCH,
    concurrency: 1,
    idleMs: config.timerIntervalSeconds * 1000,
    onError: (err) => log.error({ err: errorMessage(err) }, 'timers failed'),
  });
  timerLoop.start();

  readiness.start();
  const collector = () => databaseFigures(store, { now: ctx.now(), finishedStates: FINISHED_STATES, lateAfterMs: 2 * config.timerIntervalSeconds * 1000 });
  setDatabaseCollector(collector);
  let metricsServer: RunningPortal | null = null;
  if (config.metrics.port !== null) {
    const app = new Koa();
    app.use(probes({ readiness, metricsToken: config.metrics.token, metricsOpen: true }));
    metricsServer = await listenPortal(app as never, config.metrics.host, config.metrics.port);
  }

  let stopped = false;
  return {
    config,
    database,
    store,
    ctx,
    smtp: { host: address.address, port: address.port },
    ingest,
    outbox,
    portal,
    devAai,
    timers: { runDue, ran: () => timersRan },
    imap,
    readiness,
    metricsServer,
    privacy: { runNow: () => runDailyPrivacyJob(ctx, privacyOwner, { force: true, waitMs: 60_000 }) },
    async stop() {
      if (stopped) return;
      stopped = true;
      readiness!.stop();
      await metricsServer?.close();
      await timerLoop.stop();
      await housekeeping.stop();
      await privacyJob.stop();
      await portal?.close();
      await devAai?.stop();
      await Promise.all(imap.map((r) => r.stop()));
      await smtpIntake.close();
      await smtpStatus?.stop({ state: 'stopped' });
      await intakeNotices.stop();
      await Promise.all([ingest.stop(), outbox.stop()]);
      setDatabaseCollector(null, collector);
      await store.close();
      if (ownsDatabase) await database.stop();
    },
  };
}
