import type { PortalUser } from '../../db/models/identity.ts';
import { tryInsert } from '../../db/coordination/index.ts';
import { InvalidInputError, NotFoundError } from '../../errors/errors.ts';
import type { DomainContext } from '../context.ts';

export type BindVia = PortalUser['addresses'][number]['via'];
export type BindResult = 'bound' | 'already-yours' | 'taken';

interface Binding {
  _id: string;
  sub: string;
  via: BindVia;
  boundAt: Date;
}

/** Addresses are compared lower-cased, as the mail parser delivers them. */
export function normalizeAddress(address: string): string {
  return address.trim().toLowerCase();
}

/** A plain addr-spec as a person types it: one "@", no spaces, brackets or separators. */
export function isMailAddress(address: string): boolean {
  return address.length <= 254 && /^[^\s@<>()[\]",;:\\]+@[^\s@<>()[\]",;:\\]+$/.test(address);
}

export function requireAddress(address: unknown): string {
  const a = typeof address === 'string' ? normalizeAddress(address) : '';
  if (!isMailAddress(a)) throw new InvalidInputError('address', 'not a mail address');
  return a;
}

/** The `sub` an address is bound to, or null. A look-up by _id: it runs for every received mail. */
export async function userForAddress(ctx: DomainContext, address: string): Promise<string | null> {
  const doc = await ctx.store.models.AddressBinding.findById(normalizeAddress(address), { sub: 1 }).lean<Pick<Binding, 'sub'>>();
  return doc?.sub ?? null;
}

/**
 * Binds `address` to the identity `sub`. The binding document's _id is the address, so the
 * insert itself decides who gets it: of two identities binding one address at once, from any
 * number of connections, exactly one insert succeeds. The
 * helpdesk's own addresses count as taken. Releasing held mail is the callers' job (see
 * held.ts), which keeps this module below it.
 */
export async function bindAddress(ctx: DomainContext, sub: string, address: string, via: BindVia): Promise<BindResult> {
  const a = requireAddress(address);
  if (ctx.own.has(a)) return 'taken';
  const { AddressBinding, User } = ctx.store.models;
  if (!(await User.findById(sub, { _id: 1 }).lean())) throw new NotFoundError('user', sub);
  // A few rounds: a binding removed between our failed insert and our read lets us try again.
  for (let round = 0; round < 3; round++) {
    const boundAt = ctx.now();
    if (await insertBinding(ctx, { _id: a, sub, via, boundAt })) {
      await syncUserAddresses(ctx, sub, { add: { address: a, via, boundAt } });
      ctx.log.info({ sub, address: a, via }, 'address bound');
      return 'bound';
    }
    const owner = await AddressBinding.findById(a).lean<Binding>();
    if (!owner) continue;
    if (owner.sub !== sub) return 'taken';
    // Ours already: repair the user's copy in case an earlier run stopped before writing it.
    await syncUserAddresses(ctx, sub, { add: { address: a, via: owner.via, boundAt: owner.boundAt } });
    return 'already-yours';
  }
  return 'taken';
}

/** true when this insert created the binding, false when the address was bound already. */
function insertBinding(ctx: DomainContext, binding: Binding): Promise<boolean> {
  return tryInsert(ctx.store.models.AddressBinding, { ...binding });
}

/** Removes a binding of one's own; false when the address is not bound to `sub`. */
export async function unbindAddress(ctx: DomainContext, sub: string, address: string): Promise<boolean> {
  const a = typeof address === 'string' ? normalizeAddress(address) : '';
  const { AddressBinding } = ctx.store.models;
  const owner = await AddressBinding.findById(a, { sub: 1 }).lean<Pick<Binding, 'sub'>>();
  if (!owner || owner.sub !== sub) return false;
  // Nobody else can have taken the address between the read and the delete: that would need
  // this binding gone first.
  await AddressBinding.deleteOne({ _id: a });
  await syncUserAddresses(ctx, sub, { remove: a });
  ctx.log.info({ sub, address: a }, 'address unbound');
  return true;
}

/**
 * Keeps the user document's copy of their bindings in step with `addresses` (the authority).
 * Two bindings of one person at the same moment could each write the array without the
 * other's entry (an update is not atomic on every engine: see db/coordination). Hence: read,
 * write the whole array, read again, and repeat until our change is there.
 */
async function syncUserAddresses(ctx: DomainContext, sub: string, change: { add?: PortalUser['addresses'][number]; remove?: string }): Promise<void> {
  const { User } = ctx.store.models;
  for (let round = 0; round < 5; round++) {
    const user = await User.findById(sub, { addresses: 1 }).lean<Pick<PortalUser, 'addresses'>>();
    if (!user) return;
    const current = user.addresses ?? [];
    const has = (address: string) => current.some((x) => x.address === address);
    if ((!change.add || has(change.add.address)) && (!change.remove || !has(change.remove))) return;
    let next = current.filter((x) => x.address !== change.remove);
    if (change.add && !has(change.add.address)) next = [...next, change.add];
    await User.updateOne({ _id: sub }, { $set: { addresses: next } });
  }
  ctx.log.warn({ sub }, "the user's copy of their addresses could not be brought up to date; the bindings themselves are intact");
}
