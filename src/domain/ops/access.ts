import type { Config } from '../../config/load.ts';
import type { DomainContext } from '../context.ts';
import type { Viewer } from '../portal/access.ts';
import type { OpsActor } from './audit.ts';

/**
 * The operations pages (held mail, quarantine, failed mail) are First Line's: the unit that
 * takes in what arrives is the one that decides about mail that did not become a ticket.
 */
export function mayOperate(ctx: DomainContext, viewer: Viewer): boolean {
  return viewer.units.includes(ctx.units.entryKey);
}

/**
 * Captured mail (no OUTBOUND_SMTP_URL: nothing leaves, the mail is kept in the database) may be
 * read in the portal by agents; in the dev set-up (the dev LS AAI stand-in, no OIDC_ISSUER) by
 * anyone signed in, so that a newcomer can follow the sign-in link a held mail is answered with.
 */
export function mayReadCapturedMail(config: Config, viewer: Viewer): boolean {
  if (config.outboundSmtpUrl) return false;
  return viewer.agent || !config.oidc.issuer;
}

export function opsActorOf(viewer: Viewer): OpsActor {
  return { address: viewer.addresses[0] ?? viewer.user.email ?? null, name: viewer.user.name, sub: viewer.user._id };
}
