import type { PortalUser } from '../../db/models/identity.ts';
import { converge, tryInsert } from '../../db/coordination/index.ts';
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
      await syncUserAddresses(ctx, sub);
      ctx.log.info({ sub, address: a, via }, 'address bound');
      return 'bound';
    }
    const owner = await AddressBinding.findById(a).lean<Binding>();
    if (!owner) continue;
    if (owner.sub !== sub) return 'taken';
    // Ours already: repair the user's copy in case an earlier run stopped before writing it.
    await syncUserAddresses(ctx, sub);
    return 'already-yours';
  }
  return 'taken';
}

/** true when this insert created the binding, false when the address was bound already. */
function insertBinding(ctx: DomainContext, binding: Binding): Promise<boolean> {
  return tryInsert(ctx.store.models.AddressBinding, { ...binding });
}

export type UnbindResult = 'removed' | 'not-yours' | 'last';

/**
 * Removes a binding of one's own, unless it is the person's last address: mail from them
 * would then be held as a stranger's, and an agent would lose their Support Units.
 */
export async function unbindAddress(ctx: DomainContext, sub: string, address: string): Promise<UnbindResult> {
  const a = typeof address === 'string' ? normalizeAddress(address) : '';
  const { AddressBinding } = ctx.store.models;
  const binding = await AddressBinding.findById(a).lean<Binding>();
  if (!binding || binding.sub !== sub) return 'not-yours';
  if ((await AddressBinding.countDocuments({ sub })) <= 1) return 'last';
  // Nobody else can have taken the address between the read and the delete: that would need
  // this binding gone first.
  await AddressBinding.deleteOne({ _id: a });
  // Two removals at once can each have counted the other's address. Whichever finds none left
  // puts its own back, so a person always keeps at least one.
  if ((await AddressBinding.countDocuments({ sub })) === 0) {
    const restored = await insertBinding(ctx, binding);
    await syncUserAddresses(ctx, sub);
    if (restored) return 'last';
    ctx.log.warn({ sub, address: a }, 'the last address was taken by another identity while its removal was undone');
    return 'removed';
  }
  await syncUserAddresses(ctx, sub);
  ctx.log.info({ sub, address: a }, 'address unbound');
  return 'removed';
}

/**
 * Makes the user document's copy of their bindings equal to the bindings themselves (the
 * authority), in the order they were bound. Two bindings of one person at the same moment both
 * rewrite that copy (see converge).
 */
async function syncUserAddresses(ctx: DomainContext, sub: string): Promise<void> {
  const { AddressBinding, User } = ctx.store.models;
  type Addresses = PortalUser['addresses'];
  const bound = async (): Promise<Addresses> =>
    (await AddressBinding.find({ sub }).lean<Binding[]>())
      .sort((x, y) => new Date(x.boundAt).getTime() - new Date(y.boundAt).getTime() || x._id.localeCompare(y._id))
      .map((b) => ({ address: b._id, via: b.via, boundAt: b.boundAt }));
  const key = (list: Addresses) => JSON.stringify(list.map((x) => [x.address, x.via, new Date(x.boundAt).getTime()]));
  const outcome = await converge<Addresses>(User, sub, 'addresses', bound, (stored, wanted) => key(stored ?? []) === key(wanted));
  if (outcome === 'gave-up') ctx.log.warn({ sub }, "the user's copy of their addresses could not be brought up to date; the bindings themselves are intact");
}
