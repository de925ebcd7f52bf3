import type { PortalUser } from '../../db/models/identity.ts';
import type { DomainContext } from '../context.ts';
import { isMailAddress, normalizeAddress, userForAddress } from '../identity/bindings.ts';
import { findUser } from '../identity/users.ts';

/** The person a data-protection request is about: an LS AAI identity with its bound addresses, or a bare address. */
export interface DataSubject {
  sub: string | null;
  user: PortalUser | null;
  /** Lower-cased: the bound addresses (all of them), or the one address given. */
  addresses: string[];
}

/** The mail addresses bound to `sub` now (the bindings are the authority, the user's copy may lag). */
export async function boundAddresses(ctx: DomainContext, sub: string): Promise<string[]> {
  const bindings = await ctx.store.models.AddressBinding.find({ sub }, { _id: 1 }).lean<{ _id: string }[]>();
  const user = await findUser(ctx, sub);
  return [...new Set([...bindings.map((b) => b._id), ...(user?.addresses ?? []).map((a) => a.address)])].sort();
}

/**
 * Who `who` names: an LS AAI identifier of a known person, or a mail address (bound: its
 * identity with all its addresses; unbound: that address alone). null for a string that is
 * neither a known identifier nor a mail address.
 */
export async function findDataSubject(ctx: DomainContext, who: string): Promise<DataSubject | null> {
  const given = typeof who === 'string' ? who.trim() : '';
  if (!given) return null;
  const user = await findUser(ctx, given);
  if (user) return { sub: user._id, user, addresses: await boundAddresses(ctx, user._id) };
  const address = normalizeAddress(given);
  if (!isMailAddress(address)) return null;
  const sub = await userForAddress(ctx, address);
  if (sub) return { sub, user: await findUser(ctx, sub), addresses: await boundAddresses(ctx, sub) };
  return { sub: null, user: null, addresses: [address] };
}

/** The signed-in person as a data subject. */
export async function subjectOfUser(ctx: DomainContext, sub: string): Promise<DataSubject> {
  return { sub, user: await findUser(ctx, sub), addresses: await boundAddresses(ctx, sub) };
}
