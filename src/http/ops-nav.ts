import type { Config } from '../config/load.ts';
import type { DomainContext } from '../domain/context.ts';
import { mayOperate, mayReadCapturedMail } from '../domain/ops/access.ts';
import type { Viewer } from '../domain/portal/access.ts';

/** Which of the mail and operations pages the side bar offers this viewer. */
export function opsNavOf(domain: DomainContext, config: Config, viewer: Viewer | undefined): { mail: boolean; ops: boolean } | null {
  if (!viewer) return null;
  return { mail: mayReadCapturedMail(config, viewer), ops: mayOperate(domain, viewer) };
}
