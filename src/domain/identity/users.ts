import { readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { PortalUser } from '../../db/models/identity.ts';
import { upsertById } from '../../db/coordination/index.ts';
import { ConfigError, InvalidInputError, NotFoundError } from '../../errors/errors.ts';
import type { DomainContext } from '../context.ts';
import { bindAddress, isMailAddress, normalizeAddress, userForAddress } from './bindings.ts';
import { releaseHeldMailOf } from './held.ts';

/** The claims helpgate reads from LS AAI (OpenID Connect ID token or userinfo). */
export interface IdentityClaims {
  sub: string;
  name?: string;
  given_name?: string;
  family_name?: string;
  email?: string;
  email_verified?: boolean;
  eduperson_entitlement?: string[] | string;
  voperson_external_affiliation?: string[] | string;
  schac_home_organization?: string;
}

export interface SignInResult {
  user: PortalUser;
  /** Addresses bound by this sign-in. */
  bound: string[];
  /** The e-mail claim, when it could not be bound. */
  notBound: { address: string; reason: 'unverified' | 'taken' }[];
}

const MAX_SUB_LENGTH = 255;

function text(value: unknown, max = 200): string {
  return typeof value === 'string' ? value.trim().slice(0, max) : '';
}

/** A claim that may be one string or a list of them, as providers send either. */
function list(value: unknown): string[] {
  const items = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  return [...new Set(items.filter((x): x is string => typeof x === 'string').map((x) => x.trim()).filter(Boolean))];
}

/**
 * Records a sign-in: the user document (_id = sub) gets the latest claims, so roles follow the
 * provider at every sign-in; a verified e-mail claim is bound to the user unless another
 * identity has it, and mail held from it is released. An unverified one is never bound: that
 * takes a confirmation link (addresses.ts).
 */
export async function signIn(ctx: DomainContext, claims: IdentityClaims): Promise<SignInResult> {
  const sub = claims?.sub;
  if (typeof sub !== 'string' || !sub.trim() || sub !== sub.trim() || sub.length > MAX_SUB_LENGTH) {
    throw new InvalidInputError('sub', 'the identity provider sent no usable subject identifier');
  }
  const emailClaim = text(claims.email, 320);
  const email = emailClaim && isMailAddress(normalizeAddress(emailClaim)) ? normalizeAddress(emailClaim) : null;
  const givenName = text(claims.given_name);
  const familyName = text(claims.family_name);
  await upsertUser(ctx, sub, {
    name: text(claims.name) || [givenName, familyName].filter(Boolean).join(' '),
    givenName,
    familyName,
    email,
    emailVerified: claims.email_verified === true,
    entitlements: list(claims.eduperson_entitlement),
    affiliations: list(claims.voperson_external_affiliation),
    homeOrganization: text(claims.schac_home_organization) || null,
    lastSignInAt: ctx.now(),
  });

  const bound: string[] = [];
  const notBound: SignInResult['notBound'] = [];
  if (email && claims.email_verified === true) {
    const result = await bindAddress(ctx, sub, email, 'verified-claim');
    if (result === 'taken') notBound.push({ address: email, reason: 'taken' });
    else {
      if (result === 'bound') bound.push(email);
      const released = await releaseHeldMailOf(ctx, sub, email);
      if (released) ctx.log.info({ sub, address: email, mails: released }, 'held mail released at sign-in');
    }
  } else if (email && (await userForAddress(ctx, email)) !== sub) {
    notBound.push({ address: email, reason: 'unverified' });
  }
  const user = await findUser(ctx, sub);
  if (!user) throw new NotFoundError('user', sub);
  ctx.log.info({ sub, bound: bound.length, notBound: notBound.map((x) => x.reason) }, 'signed in');
  return { user, bound, notBound };
}

async function upsertUser(ctx: DomainContext, sub: string, set: Record<string, unknown>): Promise<void> {
  // Two first sign-ins at once both create the user: upsertById makes the second an update.
  await upsertById(ctx.store.models.User, sub, set);
}

export async function findUser(ctx: DomainContext, sub: string): Promise<PortalUser | null> {
  if (typeof sub !== 'string' || !sub) return null;
  const user = await ctx.store.models.User.findById(sub).lean<PortalUser>();
  return user ? { ...user, addresses: user.addresses ?? [], consents: user.consents ?? [], entitlements: user.entitlements ?? [] } : null;
}

/** May enter the portal: REQUIRED_ENTITLEMENT unset, or among the entitlements of the last sign-in. */
export function isAuthorised(ctx: DomainContext, user: Pick<PortalUser, 'entitlements'>): boolean {
  const required = ctx.config.requiredEntitlement;
  return required === null || user.entitlements.includes(required);
}

/** An agent: a bound address is a Support Unit member's, or AGENT_ENTITLEMENT is among the entitlements. */
export function isAgent(ctx: DomainContext, user: Pick<PortalUser, 'entitlements' | 'addresses'>): boolean {
  const entitlement = ctx.config.agentEntitlement;
  return user.addresses.some((a) => ctx.units.isAgent(a.address)) || (entitlement !== null && user.entitlements.includes(entitlement));
}

export interface Aup {
  version: string;
  title: string;
  /** The policy's text after the front matter (markdown-ish). */
  text: string;
}

/** Read once per file: the policy changes with a deployment, and a new version means a restart. */
const aupCache = new Map<string, Aup>();

/**
 * The Acceptable Use Policy in force (AUP_FILE): front matter between "---" lines with
 * `version:` and `title:` (YAML), then the text. Throws ConfigError when the file cannot be read
 * or names no version, since no consent could then be recorded.
 */
export function currentAup(ctx: DomainContext): Aup {
  const file = ctx.config.aupFile;
  // Keyed by modification time too: a new version put in place is asked for without a restart.
  let key: string;
  try {
    key = `${file}@${statSync(file).mtimeMs}`;
  } catch (err) {
    throw new ConfigError('AUP_FILE', `cannot read ${file}: ${(err as Error).message}`);
  }
  const cached = aupCache.get(key);
  if (cached) return cached;
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('AUP_FILE', `cannot read ${file}: ${(err as Error).message}`);
  }
  const m = /^---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)([\s\S]*)$/.exec(content.replace(/^\uFEFF/, ''));
  let meta: unknown = null;
  try {
    meta = m ? parseYaml(m[1]!) : null;
  } catch (err) {
    throw new ConfigError('AUP_FILE', `the front matter of ${file} is not valid YAML: ${(err as Error).message}`);
  }
  const fields = (meta && typeof meta === 'object' ? meta : {}) as { version?: unknown; title?: unknown };
  const version = typeof fields.version === 'string' || typeof fields.version === 'number' ? String(fields.version).trim() : '';
  if (!version) throw new ConfigError('AUP_FILE', `${file} names no version (front matter "---", "version: …", "title: …", "---")`);
  const aup: Aup = {
    version,
    title: typeof fields.title === 'string' && fields.title.trim() ? fields.title.trim() : 'Acceptable Use Policy',
    text: m![2]!.trim(),
  };
  aupCache.set(key, aup);
  return aup;
}

export function hasConsented(user: Pick<PortalUser, 'consents'>, version: string): boolean {
  return (user.consents ?? []).some((c) => c.version === version);
}

/**
 * Records that `sub` accepted AUP `version`, with the time and the client's address. An
 * append to the user's document: were it lost to a simultaneous write of the same person's
 * document (updates are not atomic on every engine), they would merely be asked again.
 */
export async function recordConsent(ctx: DomainContext, sub: string, version: string, ip: string): Promise<void> {
  if (typeof version !== 'string' || !version.trim()) throw new InvalidInputError('version', 'no policy version given');
  const consent = { version: version.trim(), at: ctx.now(), ip: typeof ip === 'string' ? ip.slice(0, 64) : '' };
  const result = await ctx.store.models.User.updateOne({ _id: sub }, { $push: { consents: consent } });
  if (result.matchedCount === 0) throw new NotFoundError('user', sub);
  ctx.log.info({ sub, version: consent.version }, 'policy accepted');
}
