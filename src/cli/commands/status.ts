import type { Config } from '../../config/load.ts';
import { countQueued } from '../../db/coordination/index.ts';
import type { ImapCheckpoint, IntakeStatus } from '../../db/models/intake.ts';
import { openCliSession } from '../db-access.ts';
import { UsageError } from '../usage.ts';

/**
 * What the running helpgate's /readyz answers (the same checks its load balancer sees): asked
 * over HTTP, because the checks are the serving process's own (its listener, its workers).
 */
async function readinessOf(config: Config): Promise<{ url: string; ready: boolean; checks: Record<string, { ok: boolean; detail: string }> } | { url: string; error: string }> {
  const host = ['0.0.0.0', '::'].includes(config.http.host) ? '127.0.0.1' : config.http.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}/readyz`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { ready: boolean; checks: Record<string, { ok: boolean; detail: string }> };
    return { url, ready: body.ready, checks: body.checks };
  } catch (err) {
    return { url, error: `no answer from the portal of the running helpgate (${(err as Error).message}); is HTTP_PORT the same as the server's?` };
  }
}

/** A running process rewrites its intakes' status at least this often (db/intake-status.ts). */
const SILENT_AFTER_MS = 90_000;

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString().replace(/\.\d+Z$/, 'Z') : '-');

export interface IntakeLine {
  intake: string;
  state: string;
  lastMessageAt: Date | null;
  backlog: number | null;
  lastError: string | null;
  lastErrorAt: Date | null;
  reporter: string | null;
  updatedAt: Date | null;
  detail: string | null;
  failures: number;
}

/**
 * `helpgate status [--json]`: every intake (each SMTP listener, each configured mailbox, the
 * pipe) with its state, last message, backlog and last error, as the running processes record
 * them in `intakestatus`; first, the database engine.
 */
export async function statusCommand(args: string[], config: Config): Promise<number> {
  const json = args.includes('--json');
  const rest = args.filter((a) => a !== '--json');
  if (rest.length) throw new UsageError(`status: unexpected argument "${rest[0]}"`);
  const session = await openCliSession(config);
  try {
    const { IntakeStatus, ImapCheckpoint, Inbox } = session.store.models;
    const recorded = await IntakeStatus.find({}).lean<IntakeStatus[]>();
    const byId = new Map(recorded.map((s) => [s._id, s]));
    const now = Date.now();
    const lines: IntakeLine[] = [];
    const pendingOf = async (source: 'smtp' | 'pipe') => Inbox.countDocuments({ state: 'pending', source });
    const line = (intake: string, s: IntakeStatus | undefined, backlog: number | null): IntakeLine => {
      let state = s?.state ?? 'never reported';
      const silent = s && s.kind !== 'pipe' && s.state !== 'stopped' && now - new Date(s.updatedAt).getTime() > SILENT_AFTER_MS;
      if (silent) state = `${state} (no report since ${iso(s.updatedAt)}: process gone?)`;
      return {
        intake,
        state,
        lastMessageAt: s?.lastMessageAt ?? null,
        backlog,
        lastError: s?.lastError ?? null,
        lastErrorAt: s?.lastErrorAt ?? null,
        reporter: s?.reporter ?? null,
        updatedAt: s?.updatedAt ?? null,
        detail: s?.detail ?? null,
        failures: s?.failures ?? 0,
      };
    };
    const smtpPending = await pendingOf('smtp');
    const smtp = recorded.filter((s) => s.kind === 'smtp');
    if (!smtp.length) lines.push(line('smtp', undefined, smtpPending));
    for (const s of smtp) lines.push(line(s._id, s, smtpPending));
    for (const m of config.mailboxes) {
      const s = byId.get(`imap:${m.name}`);
      const cp = await ImapCheckpoint.findById(m.name).lean<ImapCheckpoint>();
      const l = line(`imap:${m.name}`, s, s?.backlog ?? null);
      l.detail = `${m.user}@${m.host}:${m.port}/${m.folder}, after store: ${m.afterStore === 'move' ? `move to "${m.moveTo}"` : m.afterStore}` + (cp?.uidValidity ? `, checkpoint UIDVALIDITY ${cp.uidValidity} UID ${cp.lastUid}` : '');
      lines.push(l);
    }
    // Mailboxes that reported but are no longer configured here.
    for (const s of recorded.filter((r) => r.kind === 'imap' && !config.mailboxes.some((m) => `imap:${m.name}` === r._id))) lines.push(line(`${s._id} (not in this configuration)`, s, s.backlog));
    lines.push(line('pipe', byId.get('pipe'), await pendingOf('pipe')));
    const ingestBacklog = await countQueued(session.store.models.InboxQueue);

    const database = { engine: session.database.engine, label: session.database.label };
    const readiness = await readinessOf(config);
    if (json) {
      process.stdout.write(`${JSON.stringify({ database, readiness, intakes: lines, ingestBacklog }, null, 2)}\n`);
      return 0;
    }
    process.stdout.write(`database\n  engine        ${database.label}\n`);
    process.stdout.write(`readiness (${readiness.url})\n`);
    if ('error' in readiness) process.stdout.write(`  ${readiness.error}\n`);
    else {
      process.stdout.write(`  ready         ${readiness.ready ? 'yes' : 'NO'}\n`);
      for (const [name, c] of Object.entries(readiness.checks)) process.stdout.write(`  ${name.padEnd(13)} ${c.ok ? 'ok  ' : 'FAIL'} ${c.detail}\n`);
    }
    for (const l of lines) {
      process.stdout.write(`${l.intake}\n`);
      process.stdout.write(`  state         ${l.state}${l.reporter ? `  (${l.reporter})` : ''}\n`);
      if (l.detail) process.stdout.write(`  where         ${l.detail}\n`);
      process.stdout.write(`  last message  ${iso(l.lastMessageAt)}\n`);
      process.stdout.write(`  backlog       ${l.backlog ?? '-'}\n`);
      process.stdout.write(`  last error    ${l.lastError ? `${iso(l.lastErrorAt)} ${l.lastError}${l.failures > 1 ? ` (${l.failures} attempts)` : ''}` : '-'}\n`);
    }
    process.stdout.write(`ingest backlog: ${ingestBacklog} stored message(s) waiting\n`);
    return 0;
  } finally {
    await session.close();
  }
}
