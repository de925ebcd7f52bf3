import type { PortalUser } from '../../db/models/identity.ts';
import type { Ticket } from '../../db/models/ticket.ts';
import type { DomainContext } from '../context.ts';

/** Who is looking: the signed-in person with their bound addresses and agent role. */
export interface Viewer {
  user: PortalUser;
  addresses: string[];
  /** Keys of the units whose member this person is (by a bound address). */
  units: string[];
  agent: boolean;
}

export function viewerOf(ctx: DomainContext, user: PortalUser, agentByEntitlement: boolean): Viewer {
  const addresses = user.addresses.map((a) => a.address);
  const units = ctx.units.all().filter((u) => u.members.some((m) => addresses.includes(m))).map((u) => u.key);
  return { user, addresses, units, agent: units.length > 0 || agentByEntitlement };
}

/**
 * Whether the viewer may see a ticket: its owner, its requester or a participant (by a bound
 * address), or an agent of its current unit or of the entry unit. Everyone else is told the
 * ticket does not exist.
 */
export function maySee(ctx: DomainContext, viewer: Viewer, ticket: Ticket): boolean {
  if (ticket.ownerSub && ticket.ownerSub === viewer.user._id) return true;
  if (viewer.addresses.includes(ticket.requester.address)) return true;
  if (ticket.participants.some((p) => viewer.addresses.includes(p))) return true;
  if (viewer.agent && (viewer.units.includes(ticket.su) || viewer.units.includes(ctx.units.entryKey))) return true;
  return false;
}

/** Agents act as the unit; everyone else who may see a ticket writes as the requester's side. */
export function roleOn(ctx: DomainContext, viewer: Viewer, ticket: Ticket): 'agent' | 'requester' | 'participant' {
  const ofItsUnits = viewer.units.includes(ticket.su) || viewer.units.includes(ctx.units.entryKey);
  if (viewer.agent && ofItsUnits && ticket.ownerSub !== viewer.user._id && !viewer.addresses.includes(ticket.requester.address)) return 'agent';
  if (ticket.ownerSub === viewer.user._id || viewer.addresses.includes(ticket.requester.address)) return 'requester';
  return 'participant';
}
