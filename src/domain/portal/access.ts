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
 * Whether the viewer sees the ticket as an agent: First Line sees every ticket; another unit
 * sees the tickets that are or were in it.
 */
export function seesAsAgent(ctx: DomainContext, viewer: Viewer, ticket: Pick<Ticket, 'su' | 'unitsSeen'>): boolean {
  if (!viewer.agent) return false;
  if (viewer.units.includes(ctx.units.entryKey) || viewer.units.includes(ticket.su)) return true;
  return (ticket.unitsSeen ?? []).some((u) => viewer.units.includes(u));
}

function isRequester(viewer: Viewer, ticket: Ticket): boolean {
  return (!!ticket.ownerSub && ticket.ownerSub === viewer.user._id) || viewer.addresses.includes(ticket.requester.address);
}

/**
 * The participants the portal lets in. Mail can name anyone in Cc, and a forged From: would
 * otherwise let its Cc read the ticket: so with UNAUTHENTICATED_SENDERS=flag only those named
 * by a proven sender count (Ticket.verifiedParticipants); the open mode lets every participant in.
 */
function portalParticipants(ctx: DomainContext, ticket: Ticket): string[] {
  return ctx.config.senderAuth.unauthenticated === 'accept' ? ticket.participants : (ticket.verifiedParticipants ?? []);
}

/**
 * Whether the viewer may see a ticket: its owner, its requester or a participant (by a bound
 * address; see portalParticipants), or an agent who sees it (see seesAsAgent). Everyone else
 * is told the ticket does not exist.
 */
export function maySee(ctx: DomainContext, viewer: Viewer, ticket: Ticket): boolean {
  if (isRequester(viewer, ticket)) return true;
  if (portalParticipants(ctx, ticket).some((p) => viewer.addresses.includes(p))) return true;
  return seesAsAgent(ctx, viewer, ticket);
}

/** Agents act as the unit; everyone else who may see a ticket writes as the requester's side. */
export function roleOn(ctx: DomainContext, viewer: Viewer, ticket: Ticket): 'agent' | 'requester' | 'participant' {
  if (isRequester(viewer, ticket)) return 'requester';
  if (seesAsAgent(ctx, viewer, ticket)) return 'agent';
  return 'participant';
}
