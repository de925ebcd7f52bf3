import test from 'ava';
import { freePort } from '../src/db/embedded.ts';
import { runCli, cliDatabaseEnv } from './helpers/cli.ts';
import { startTestDatabase } from './helpers/database.ts';
import { HELPDESK, startTestHelpgate, type TestHelpgate } from './helpers/helpgate.ts';
import { SmtpDialogue } from './helpers/smtp-dialogue.ts';
import { until } from './helpers/wait.ts';

interface Readyz {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail: string }>;
}

async function portalHelpgate(t: Parameters<typeof startTestHelpgate>[0], env: Record<string, string> = {}, db?: Awaited<ReturnType<typeof startTestDatabase>>): Promise<{ h: TestHelpgate; base: string }> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const h = await startTestHelpgate(t, { portal: true, ...(db ? { db } : {}), env: { HTTP_PORT: String(port), PUBLIC_URL: base, ...env } });
  return { h, base };
}

async function readyz(base: string): Promise<{ status: number; body: Readyz }> {
  const res = await fetch(`${base}/readyz`);
  return { status: res.status, body: (await res.json()) as Readyz };
}

/** The value of one sample in a Prometheus exposition ("name{labels} value"), 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return 0;
}

function mail(i: number) {
  return {
    envelope: { from: `metric-${i}@uni.example`, to: [HELPDESK] },
    raw: [`From: Researcher ${i} <metric-${i}@uni.example>`, `To: ${HELPDESK}`, `Subject: Metrics ${i}`, `Message-ID: <metrics-${i}@uni.example>`, '', `Mail number ${i}.`, ''].join('\r\n'),
  };
}

test('/healthz answers while the process lives; /readyz and helpgate status flip to not ready when the database stops, and back', async (t) => {
  const db = await startTestDatabase({ own: true });
  t.teardown(() => db.cleanup());
  const { h, base } = await portalHelpgate(t, {}, db);

  const alive = await fetch(`${base}/healthz`);
  t.is(alive.status, 200);
  t.is(((await alive.json()) as { status: string }).status, 'alive');
  t.falsy(alive.headers.get('set-cookie'), 'probes make no session');

  const ready = await until(async () => ((await readyz(base)).status === 200 ? readyz(base) : null), { what: 'ready' });
  t.deepEqual(Object.keys(ready.body.checks).sort(), ['database', 'outbox', 'smtp', 'workers']);
  t.true(Object.values(ready.body.checks).every((c) => c.ok), JSON.stringify(ready.body));

  const status = await runCli(['status', '--json'], { env: { ...cliDatabaseEnv(db), HTTP_PORT: new URL(base).port } });
  t.is(status.code, 0, status.stderr);
  t.is((JSON.parse(status.stdout) as { readiness: Readyz }).readiness.ready, true);

  await db.stop();
  const down = await until(async () => {
    const r = await readyz(base);
    return r.status === 503 ? r : null;
  }, { what: '/readyz to answer 503', timeoutMs: 30_000 });
  t.false(down.body.ready);
  t.false(down.body.checks.database!.ok);
  t.true(down.body.checks.smtp!.ok, 'only the database fails');
  // The intake no longer takes what it could not keep: 421 at the greeting.
  const { dialogue, greeting } = await SmtpDialogue.open(h.hg.smtp.port);
  dialogue.close();
  t.regex(greeting.text, /^421 4\.3\.2 Not accepting mail right now/);
  t.is((await fetch(`${base}/healthz`)).status, 200, 'alive all the same');

  await db.restart();
  await until(async () => (await readyz(base)).status === 200, { what: '/readyz to answer 200 again', timeoutMs: 60_000 });
  const again = await until(async () => {
    const o = await SmtpDialogue.open(h.hg.smtp.port);
    o.dialogue.close();
    return o.greeting.code === 220 ? o.greeting : null;
  }, { what: 'SMTP to greet again' });
  t.regex(again.text, /^220 /);
});

test('/metrics: refused on the portal without METRICS_TOKEN, served with it and on METRICS_PORT; the figures move when mail flows', async (t) => {
  const closed = await portalHelpgate(t);
  t.is((await fetch(`${closed.base}/metrics`)).status, 404, 'no token configured: not on the public portal');

  const metricsPort = await freePort();
  const token = 'metrics-token-0123456789';
  const { h, base } = await portalHelpgate(t, { METRICS_TOKEN: token, METRICS_PORT: String(metricsPort) });
  t.is((await fetch(`${base}/metrics`)).status, 401);
  t.is((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401);
  const scrape = async () => {
    const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    t.is(res.status, 200);
    t.regex(res.headers.get('content-type') ?? '', /^text\/plain/);
    return res.text();
  };
  const own = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  t.is(own.status, 200, 'the metrics listener needs no token');

  const before = await scrape();
  for (let i = 0; i < 3; i++) await h.send(mail(i));
  await h.settle();
  await until(async () => sample(await scrape(), 'helpgate_delivery_attempts_total', { result: 'sent', class: 'none' }) - sample(before, 'helpgate_delivery_attempts_total', { result: 'sent', class: 'none' }) >= 3, { what: 'deliveries counted' });
  const after = await scrape();

  const moved = (name: string, labels: Record<string, string> = {}) => sample(after, name, labels) - sample(before, name, labels);
  t.true(moved('helpgate_intake_replies_total', { channel: 'smtp', code: '250' }) >= 3);
  t.true(moved('helpgate_intake_message_size_bytes_count', { channel: 'smtp' }) >= 3);
  t.true(moved('helpgate_ingest_latency_seconds_count') >= 3);
  t.true(moved('helpgate_ingest_outcomes_total', { outcome: 'ticket' }) >= 3);
  t.is(sample(after, 'helpgate_inbox_messages', { state: 'done' }), 3);
  t.is(sample(after, 'helpgate_inbox_queue_depth'), 0);
  t.true(sample(after, 'helpgate_outbox_mails', { state: 'sent' }) >= 3);
  t.is(sample(after, 'helpgate_database_up'), 1);
  t.true(moved('helpgate_http_request_duration_seconds_count', { route: '/metrics', method: 'GET', status: '200' }) >= 1);
  for (const name of ['helpgate_held_mails', 'helpgate_inbox_quarantined', 'helpgate_timers_due', 'helpgate_timers_late', 'helpgate_sla_breached_tickets', 'helpgate_outbox_queue_depth', 'helpgate_inbox_oldest_age_seconds']) {
    t.regex(after, new RegExp(`^${name} \\d`, 'm'), `${name} is exposed`);
  }
  for (const name of ['helpgate_bounces_total', 'helpgate_sign_ins_total', 'helpgate_sla_escalations_total', 'helpgate_imap_backlog']) t.regex(after, new RegExp(`# TYPE ${name} `), `${name} is declared`);
});
