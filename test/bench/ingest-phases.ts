import path from 'node:path';
import type { Types } from 'mongoose';
import { loadConfig } from '../../src/config/load.ts';
import { countQueued } from '../../src/db/coordination/index.ts';
import { createLogger } from '../../src/log/logger.ts';
import { startHelpgate, type Helpgate } from '../../src/main.ts';
import type { BenchMail } from './corpus.ts';
import type { DbProfile } from './db-profile.ts';
import type { BenchDatabase } from './engines.ts';
import { SinkServer } from './sink.ts';
import { Connection, deliverAll, nowMs, percentile, type LoadResult } from './smtp-load.ts';

/**
 * The three measurements bench:ingest takes of helpgate on one engine. Each runs a helpgate of
 * its own on a fresh database of that engine, with outbound mail going to a capture relay.
 */

export const HELPDESK = 'help@helpdesk.localhost';
export const CONNECTIONS = 5;

export interface PhaseEnv {
  db: BenchDatabase;
  /** A folder of this engine's run; each helpgate gets a data folder inside. */
  dir: string;
  profile: DbProfile;
}

async function startOn(env: PhaseEnv, part: string, relay: SinkServer): Promise<Helpgate> {
  const config = loadConfig({
    HELPGATE_DATA_DIR: path.join(env.dir, part),
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: '0',
    // Every mail is to become a ticket: an open helpdesk, not the hold-until-sign-in rule.
    UNBOUND_SENDERS: 'accept',
    OUTBOUND_SMTP_URL: `smtp://127.0.0.1:${relay.port}`,
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'error',
    ...(process.env.INGEST_CONCURRENCY ? { INGEST_CONCURRENCY: process.env.INGEST_CONCURRENCY } : {}),
  });
  return startHelpgate(config, { log: createLogger(config.logLevel), portal: false, database: env.db.server, dbName: env.db.dbName(part) });
}

/** Runs `body` on a helpgate of its own and its own relay, then stops both. */
async function withHelpgate<T>(env: PhaseEnv, part: string, body: (hg: Helpgate, relay: SinkServer) => Promise<T>): Promise<T> {
  const relay = await SinkServer.listen(false);
  try {
    const hg = await startOn(env, part, relay);
    try {
      return await body(hg, relay);
    } finally {
      await hg.stop();
    }
  } finally {
    await relay.close();
  }
}

const dataToReply = (load: LoadResult) => load.deliveries.map((d) => d.repliedAt - d.endOfDataAt);

export interface IntakeFigures {
  rate: number;
  seconds: number;
  refused: number;
  /** End of DATA → 250, p50 and p99. */
  replyP50: number;
  replyP99: number;
  writesPerMail: number;
}

/** SMTP intake alone: the ingest and outbox workers are stopped, so only the listener and its writes run. */
export function measureIntake(env: PhaseEnv, mails: BenchMail[]): Promise<IntakeFigures> {
  return withHelpgate(env, 'intake', async (hg) => {
    await Promise.all([hg.ingest.stop(), hg.outbox.stop()]);
    env.profile.reset();
    const load = await deliverAll(hg.smtp.port, mails, HELPDESK, CONNECTIONS);
    const refused = load.deliveries.filter((d) => d.code !== 250).length;
    const seconds = (load.finishedAt - load.startedAt) / 1000;
    const replies = dataToReply(load);
    return { rate: (mails.length - refused) / seconds, seconds, refused, replyP50: percentile(replies, 50), replyP99: percentile(replies, 99), writesPerMail: env.profile.writes() / mails.length };
  });
}

/**
 * What is still to do: items in the inbox and outbox work queues (mail not yet ingested,
 * outbound mail not yet delivered). Read from the queues, which are small, not from the inbox
 * and outbox, which every engine scans to count by state: polling those would load the
 * engine being measured.
 */
async function backlog(hg: Helpgate): Promise<number> {
  const { InboxQueue, OutboxQueue } = hg.store.models;
  const [inbox, outbox] = await Promise.all([countQueued(InboxQueue), countQueued(OutboxQueue)]);
  return inbox + outbox;
}

export interface PipelineFigures {
  /** false when the deadline came first: the figures are for what was done by then. */
  finished: boolean;
  rate: number;
  seconds: number;
  refused: number;
  articles: number;
  tickets: number;
  threadedReplies: number;
  replies: number;
  notIngested: number;
  relayed: number;
  writesPerMail: number;
  /** Under the full load: 250 → article stored and 250 → acknowledgement queued. */
  articleLatency: number[];
  ackLatency: number[];
  /** Single-document durable inserts per second on this engine, 8 at a time. */
  writeCeiling: number;
  commands: string[];
}

/**
 * The whole pipeline: every mail sent over CONNECTIONS connections, timed until each is an
 * article and every automatic mail it caused has reached the relay. Done is read from the
 * database once nothing is pending and no mail reached the relay between two looks a second apart.
 */
export function measurePipeline(env: PhaseEnv, mails: BenchMail[], deadlineMs: number, profileRows: number): Promise<PipelineFigures> {
  return withHelpgate(env, 'pipeline', async (hg, relay) => {
    env.profile.reset();
    const load = await deliverAll(hg.smtp.port, mails, HELPDESK, CONNECTIONS);
    const refused = load.deliveries.filter((d) => d.code !== 250).length;
    const deadline = load.startedAt + deadlineMs;
    let finished = false;
    let idleBefore = false;
    let relayedBefore = -1;
    let lastReport = nowMs();
    while (nowMs() < deadline) {
      const relayed = relay.received;
      const idle = (await backlog(hg)) === 0;
      if (idle && idleBefore && relayed === relayedBefore) {
        finished = true;
        break;
      }
      idleBefore = idle;
      relayedBefore = relayed;
      if (nowMs() - lastReport > 30_000) {
        lastReport = nowMs();
        process.stdout.write(`    … ${relayed} outbound mails relayed (${((nowMs() - load.startedAt) / 1000).toFixed(0)} s)\n`);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (!finished) {
      process.stdout.write('    deadline reached: stopping the workers; the figures are for the work done so far\n');
      await Promise.all([hg.ingest.stop(), hg.outbox.stop()]);
    }
    const stoppedAt = nowMs();
    const writes = env.profile.writes();
    const outcome = await readOutcome(hg, mails, load);
    // A run cut short by its deadline has done the work of the articles it stored, roughly.
    const done = finished ? mails.length : Math.max(1, outcome.articles);
    const writesPerMail = writes / done;
    const commands = env.profile.report(done, profileRows);
    const completedAt = finished ? Math.max(relay.lastAt || 0, outcome.lastArticleAt) : stoppedAt;
    const seconds = (completedAt - load.startedAt) / 1000;
    return { finished, refused, seconds, rate: outcome.articles / seconds, relayed: relay.received, writesPerMail, commands, ...outcome, writeCeiling: await durableWriteCeiling(hg) };
  });
}

async function readOutcome(hg: Helpgate, mails: BenchMail[], load: LoadResult) {
  const { Inbox, Article, Outbox, Ticket } = hg.store.models;
  const repliedAt = new Map(mails.map((m) => [m.messageId, load.deliveries[m.index]!.repliedAt]));
  const articles = await Article.find({ direction: 'in' }, { messageId: 1, createdAt: 1, ticketId: 1 }).lean<{ _id: unknown; messageId: string; createdAt: Date; ticketId: unknown }[]>();
  const byId = new Map(articles.map((a) => [String(a._id), a]));
  const acks = await Outbox.find({ kind: 'ack' }, { articleId: 1, createdAt: 1 }).lean<{ articleId: unknown; createdAt: Date }[]>();
  // A reply is threaded when its article joined the ticket of the mail it answers; only stored replies count.
  const ticketOf = new Map(articles.map((a) => [a.messageId, String(a.ticketId)]));
  const replies = mails.filter((m) => m.parent !== null && ticketOf.has(m.messageId));
  return {
    articles: articles.length,
    lastArticleAt: Math.max(0, ...articles.map((a) => a.createdAt.getTime())),
    tickets: await Ticket.countDocuments({}),
    notIngested: await Inbox.countDocuments({ state: { $in: ['ignored', 'quarantined', 'held', 'expired'] } }),
    replies: replies.length,
    threadedReplies: replies.filter((m) => ticketOf.get(m.messageId) === ticketOf.get(mails[m.parent!]!.messageId)).length,
    articleLatency: articles.map((a) => a.createdAt.getTime() - repliedAt.get(a.messageId)!),
    ackLatency: acks.filter((o) => byId.has(String(o.articleId))).map((o) => o.createdAt.getTime() - repliedAt.get(byId.get(String(o.articleId))!.messageId)!),
  };
}

/**
 * What the engine itself can do on helpgate's connection: 400 single-document inserts with
 * helpgate's write concern (majority, journaled), 8 at a time, into a scratch collection dropped
 * afterwards. Every mail costs some of these, so this bounds the pipeline whatever the code does.
 */
async function durableWriteCeiling(hg: Helpgate): Promise<number> {
  const scratch = hg.store.conn.db!.collection('bench_write_ceiling');
  const total = 400;
  let next = 0;
  const started = nowMs();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < total) {
        const n = next++;
        await scratch.insertOne({ n, at: new Date() }, { writeConcern: { w: 'majority', journal: true } });
      }
    }),
  );
  const rate = (total * 1000) / (nowMs() - started);
  await scratch.drop();
  return rate;
}

export interface SingleFigures {
  /** 250 → acknowledgement queued (its outbox record), one value per mail. */
  ackLatency: number[];
  /** 250 → article stored. */
  articleLatency: number[];
  /** Database write commands from DATA until the mail and all it caused are done. */
  writes: number[];
  /** Outbound mails each caused (acknowledgement and notifications). */
  outbound: number[];
  /** The write commands of the last single mail, by kind (for --profile). */
  lastWrites: [string, number][];
  failures: string[];
  /** Mails not sent because the budget ran out. */
  skipped: number;
}

/**
 * New-ticket mails sent one at a time on an idle helpgate: each waits until its acknowledgement
 * reached the relay and nothing is pending before the next is sent. Gives the latency without a
 * backlog and the exact write count of one new-ticket mail, its outbound mail delivered. No
 * mail is sent after `budgetMs`, and none waits longer than a minute.
 */
export function measureSingles(env: PhaseEnv, mails: BenchMail[], budgetMs: number): Promise<SingleFigures> {
  return withHelpgate(env, 'single', async (hg, relay) => {
    const out: SingleFigures = { ackLatency: [], articleLatency: [], writes: [], outbound: [], lastWrites: [], failures: [], skipped: 0 };
    const { Article, Outbox } = hg.store.models;
    const endAt = nowMs() + budgetMs;
    const conn = await Connection.open(hg.smtp.port);
    try {
      for (const [i, mail] of mails.entries()) {
        if (nowMs() > endAt) {
          out.skipped = mails.length - i;
          break;
        }
        const writesBefore = env.profile.writes();
        const kindsBefore = env.profile.writeCounts();
        const relayFrom = relay.received;
        const sent = await conn.send(mail, HELPDESK);
        if (sent.code !== 250) {
          out.failures.push(`DATA answered ${sent.code}`);
          continue;
        }
        const ack = await relay.waitFor((a) => a.to.includes(mail.from.toLowerCase()), relayFrom, 60_000);
        if (!ack || !(await untilNoBacklog(hg, 60_000))) {
          out.failures.push(ack ? 'still pending after 60 s' : 'no acknowledgement within 60 s');
          continue;
        }
        out.writes.push(env.profile.writes() - writesBefore);
        out.lastWrites = [...env.profile.writeCounts()].map(([k, n]): [string, number] => [k, n - (kindsBefore.get(k) ?? 0)]).filter(([, n]) => n > 0);
        out.outbound.push(relay.received - relayFrom);
        const article = await Article.findOne({ messageId: mail.messageId }, { _id: 1, createdAt: 1 }).lean<{ _id: Types.ObjectId; createdAt: Date }>();
        if (article) out.articleLatency.push(article.createdAt.getTime() - sent.repliedAt);
        const queued = article && (await Outbox.findOne({ kind: 'ack', articleId: article._id }, { createdAt: 1 }).lean<{ createdAt: Date }>());
        // Without its record (a queue that empties), the relay's arrival bounds the time from above.
        out.ackLatency.push((queued ? queued.createdAt.getTime() : ack.at) - sent.repliedAt);
      }
    } finally {
      await conn.quit();
    }
    return out;
  });
}

async function untilNoBacklog(hg: Helpgate, timeoutMs: number): Promise<boolean> {
  const deadline = nowMs() + timeoutMs;
  while (nowMs() < deadline) {
    if ((await backlog(hg)) === 0) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
