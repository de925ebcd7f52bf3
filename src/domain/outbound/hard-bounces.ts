import type { Types } from 'mongoose';
import { tryInsert } from '../../db/coordination/index.ts';
import type { HardBounce } from '../../db/models/bounce.ts';
import type { DomainContext } from '../context.ts';

/** Mail to an address has bounced "repeatedly" from this many hard bounces on. */
export const REPEATED_BOUNCES = 2;

export interface BounceHistory {
  address: string;
  count: number;
  lastAt: Date;
  lastStatus: string;
  lastDiagnostic: string | null;
}

/** Records a hard bounce of one mail to one address (once, however often its report arrives). */
export async function recordHardBounce(
  ctx: DomainContext,
  mail: { _id: Types.ObjectId; ticketId: Types.ObjectId | null; ticketNumber: number | null },
  address: string,
  report: { status: string; diagnostic: string | null },
): Promise<void> {
  await tryInsert(ctx.store.models.HardBounce, {
    _id: `${mail._id}:${address}`,
    address,
    outboxId: mail._id,
    ticketId: mail.ticketId,
    ticketNumber: mail.ticketNumber,
    status: report.status,
    diagnostic: report.diagnostic,
    at: ctx.now(),
  });
}

/** The hard bounces of these addresses, one entry per address that has any (one query). */
export async function hardBouncesOf(ctx: DomainContext, addresses: string[]): Promise<BounceHistory[]> {
  const wanted = [...new Set(addresses.filter(Boolean).map((a) => a.toLowerCase()))];
  if (!wanted.length) return [];
  const found = await ctx.store.models.HardBounce.find({ address: { $in: wanted } }).lean<HardBounce[]>();
  return summarise(found);
}

/** Addresses whose mail bounced at least `min` times, most recent first. */
export async function repeatedlyBouncing(ctx: DomainContext, min = REPEATED_BOUNCES): Promise<BounceHistory[]> {
  const all = await ctx.store.models.HardBounce.find({}).sort({ at: -1 }).limit(10_000).lean<HardBounce[]>();
  return summarise(all).filter((h) => h.count >= min);
}

function summarise(bounces: HardBounce[]): BounceHistory[] {
  const by = new Map<string, BounceHistory>();
  for (const b of bounces) {
    const h = by.get(b.address);
    if (!h) by.set(b.address, { address: b.address, count: 1, lastAt: b.at, lastStatus: b.status, lastDiagnostic: b.diagnostic });
    else {
      h.count++;
      if (b.at > h.lastAt) Object.assign(h, { lastAt: b.at, lastStatus: b.status, lastDiagnostic: b.diagnostic });
    }
  }
  return [...by.values()].sort((a, b) => b.lastAt.getTime() - a.lastAt.getTime());
}
