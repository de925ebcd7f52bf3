import { randomBytes, randomUUID } from 'node:crypto';
import { idFor, insertOnce, Lease } from '../../db/coordination/index.ts';
import type { ErasureCounts, ErasureRequest } from '../../db/models/privacy.ts';
import { HelpgateError, InvalidInputError, NotFoundError } from '../../errors/errors.ts';
import type { DomainContext } from '../context.ts';
import { sendNotice } from '../identity/notices.ts';
import { mayOperate } from '../ops/access.ts';
import type { Viewer } from '../portal/access.ts';
import { applyErasure, planErasure, type ErasureTarget } from './erase.ts';
import { boundAddresses, type DataSubject } from './subject.ts';

const DAY = 86_400_000;
const OPEN_STATES = ['requested', 'confirmed'] as const;
/** How long one execution keeps a request to itself (a second agent's click waits, then finds it done). */
const EXECUTION_LEASE_MS = 10 * 60_000;

/** A request that cannot be carried out as asked (cancelled, already done). */
export class ErasureRefused extends HelpgateError {
  constructor(message: string) {
    super('erasure_refused', message);
  }
}

export type ErasureExecutor = ErasureTarget['by'];

/** A pseudonym no one can trace back to the person (random, not a hash of their identifier). */
function newPseudonym(): string {
  return `erased-${randomBytes(5).toString('hex')}@erased.invalid`;
}

/** The person's erasure request still waiting to be carried out, if any. */
export async function openErasureOf(ctx: DomainContext, sub: string): Promise<ErasureRequest | null> {
  const open = await ctx.store.models.ErasureRequest.find({ sub, state: { $in: OPEN_STATES } }).sort({ requestedAt: 1 }).lean<ErasureRequest[]>();
  return open[0] ?? null;
}

/**
 * Records that a signed-in person asks for their data to be erased, and tells them by mail
 * (to each of their addresses) what happens and when. `submission`: the confirmation form's
 * id, so sending it twice records one request; a person with a request open gets that one.
 */
export async function requestErasure(ctx: DomainContext, sub: string, submission: string): Promise<ErasureRequest> {
  if (!/^[A-Za-z0-9_-]{8,64}$/.test(submission)) throw new InvalidInputError('submission', 'the form carries no valid submission id');
  const open = await openErasureOf(ctx, sub);
  if (open) return open.state === 'requested' ? confirmErasure(ctx, open) : open;
  const user = await ctx.store.models.User.findById(sub, { _id: 1 }).lean();
  if (!user) throw new NotFoundError('user', sub);
  const key = `portal:${sub}:${submission}`;
  const now = ctx.now();
  const { doc } = await insertOnce<ErasureRequest>(ctx.store.models.ErasureRequest, {
    _id: idFor('erasure', key),
    key,
    sub,
    addresses: await boundAddresses(ctx, sub),
    pseudonym: newPseudonym(),
    state: 'requested',
    requestedAt: now,
    confirmedAt: null,
    dueAt: new Date(now.getTime() + ctx.config.erasureGraceDays * DAY),
    executedAt: null,
    cancelledAt: null,
    executedBy: null,
    counts: null,
  });
  ctx.log.info({ sub, erasure: String(doc._id) }, 'erasure requested');
  return confirmErasure(ctx, doc);
}

/**
 * Tells the person their request was recorded (once per address: the mail's key), then marks
 * it confirmed. A run that stopped between the two is finished by the daily job.
 */
async function confirmErasure(ctx: DomainContext, request: ErasureRequest): Promise<ErasureRequest> {
  const dueDate = new Date(request.dueAt).toISOString().slice(0, 10);
  for (const address of request.addresses) {
    await sendNotice(ctx, {
      key: `erasure-requested:${String(request._id)}:${address}`,
      kind: 'erasure-requested',
      template: 'erasure-requested',
      to: address,
      subject: `Your request to erase your data at the ${ctx.config.helpdesk.name}`,
      autoSubmitted: 'auto-generated',
      view: { dueDate, graceDays: ctx.config.erasureGraceDays, accountUrl: `${ctx.config.publicUrl}/account` },
    });
  }
  const confirmedAt = ctx.now();
  await ctx.store.models.ErasureRequest.updateOne({ _id: request._id, state: 'requested' }, { $set: { state: 'confirmed', confirmedAt } });
  return { ...request, state: 'confirmed', confirmedAt };
}

/** Withdraws the person's open request (before it was carried out). Returns whether there was one. */
export async function cancelErasure(ctx: DomainContext, sub: string): Promise<boolean> {
  const open = await openErasureOf(ctx, sub);
  if (!open) return false;
  await ctx.store.models.ErasureRequest.updateMany({ sub, state: { $in: OPEN_STATES } }, { $set: { state: 'cancelled', cancelledAt: ctx.now() } });
  ctx.log.info({ sub, erasure: String(open._id) }, 'erasure request withdrawn');
  return true;
}

/** Erasure requests are carried out by agents of the entry unit (First Line), who operate the helpdesk's mail. */
export function mayExecuteErasures(ctx: DomainContext, viewer: Viewer): boolean {
  return mayOperate(ctx, viewer);
}

export interface PendingErasure {
  id: string;
  name: string;
  addresses: string[];
  requestedAt: Date;
  dueAt: Date;
  state: ErasureRequest['state'];
}

/** Requests waiting to be carried out, oldest first, with the name the person has now. */
export async function pendingErasures(ctx: DomainContext): Promise<PendingErasure[]> {
  const open = await ctx.store.models.ErasureRequest.find({ state: { $in: OPEN_STATES } }).sort({ requestedAt: 1 }).lean<ErasureRequest[]>();
  const out: PendingErasure[] = [];
  for (const r of open) {
    const user = r.sub ? await ctx.store.models.User.findById(r.sub, { name: 1 }).lean<{ name?: string }>() : null;
    out.push({ id: String(r._id), name: user?.name ?? '', addresses: r.addresses, requestedAt: r.requestedAt, dueAt: r.dueAt, state: r.state });
  }
  return out;
}

/**
 * Carries out an erasure request (an agent's click, the daily job after the grace period, or
 * the command line). The person's addresses bound now are added to those recorded at request
 * time, written to the request before anything is erased: a run that stops half-way is
 * finished by running it again. Returns the executed request.
 */
export async function executeErasure(ctx: DomainContext, id: string, by: ErasureExecutor): Promise<ErasureRequest> {
  const { ErasureRequest: Requests } = ctx.store.models;
  if (!/^[0-9a-f]{24}$/.test(id)) throw new NotFoundError('erasure request', id);
  const leases = new Lease(ctx.store, EXECUTION_LEASE_MS);
  const held = await leases.hold(`erasure:${id}`, `erase-${randomUUID()}`, () => ctx.now(), 30_000);
  if (!held) throw new ErasureRefused('this erasure is being carried out by someone else right now');
  try {
    const request = await Requests.findById(id).lean<ErasureRequest>();
    if (!request) throw new NotFoundError('erasure request', id);
    if (request.state === 'executed') return request;
    if (request.state === 'cancelled') throw new ErasureRefused('the person withdrew this request');
    const addresses = [...new Set([...request.addresses, ...(request.sub ? await boundAddresses(ctx, request.sub) : [])])].sort();
    if (addresses.length !== request.addresses.length) await Requests.updateOne({ _id: request._id }, { $set: { addresses } });
    const target: ErasureTarget = { id, sub: request.sub, addresses, pseudonym: request.pseudonym, by };
    const counts = await applyErasure(ctx, await planErasure(ctx, target));
    const done = { state: 'executed' as const, executedAt: ctx.now(), executedBy: by, counts, sub: null, addresses: [], key: `executed:${id}` };
    await Requests.updateOne({ _id: request._id }, { $set: done });
    // Another request of the same person (two tabs) is done by this one.
    if (request.sub) await Requests.updateMany({ sub: request.sub, state: { $in: OPEN_STATES } }, { $set: { ...done, counts: null, key: `executed-with:${id}` } });
    return { ...request, ...done };
  } finally {
    await leases.release(held);
  }
}

/**
 * Erases a person named on the command line (an identifier or an address), recorded as a
 * request executed at once; with `dryRun`, only says what would be erased.
 */
export async function eraseNow(ctx: DomainContext, subject: DataSubject, by: ErasureExecutor, opts: { dryRun?: boolean } = {}): Promise<{ request: ErasureRequest | null; counts: ErasureCounts }> {
  const now = ctx.now();
  const who = subject.sub ?? subject.addresses[0]!;
  const open = subject.sub ? await openErasureOf(ctx, subject.sub) : null;
  const pseudonym = open?.pseudonym ?? newPseudonym();
  if (opts.dryRun) {
    const plan = await planErasure(ctx, { id: 'dry-run', sub: subject.sub, addresses: subject.addresses, pseudonym, by });
    return { request: null, counts: plan.counts };
  }
  const key = `cli:${who}:${now.toISOString()}`;
  const request =
    open ??
    (
      await insertOnce<ErasureRequest>(ctx.store.models.ErasureRequest, {
        _id: idFor('erasure', key),
        key,
        sub: subject.sub,
        addresses: subject.addresses,
        pseudonym,
        state: 'confirmed',
        requestedAt: now,
        confirmedAt: now,
        dueAt: now,
        executedAt: null,
        cancelledAt: null,
        executedBy: null,
        counts: null,
      })
    ).doc;
  const executed = await executeErasure(ctx, String(request._id), by);
  return { request: executed, counts: executed.counts! };
}

/**
 * The daily job's part: requests whose confirmation mail was not sent (a run that stopped)
 * are confirmed, and requests past their grace period are carried out. Returns how many were
 * carried out.
 */
export async function runDueErasures(ctx: DomainContext): Promise<number> {
  const { ErasureRequest: Requests } = ctx.store.models;
  for (const r of await Requests.find({ state: 'requested' }).lean<ErasureRequest[]>()) await confirmErasure(ctx, r);
  let executed = 0;
  for (const r of await Requests.find({ state: 'confirmed', dueAt: { $lte: ctx.now() } }).lean<ErasureRequest[]>()) {
    await executeErasure(ctx, String(r._id), { kind: 'grace', sub: null, name: 'helpgate' });
    executed++;
  }
  return executed;
}
