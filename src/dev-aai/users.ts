import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors/errors.ts';

/** LS AAI subject identifiers: 40 hex digits at lifescience-ri.eu. */
export const LS_AAI_SUB = /^[0-9a-f]{40}@lifescience-ri\.eu$/;

const nonEmpty = z.string().trim().min(1);

const userSchema = z.object({
  username: z.string().trim().regex(/^[a-z][a-z0-9._-]{0,63}$/, 'lower-case letters, digits, ".", "_" and "-", starting with a letter'),
  password: nonEmpty,
  /** One line for the CLI's list of test users: what this account is for. */
  about: nonEmpty,
  sub: z.string().trim().regex(LS_AAI_SUB, 'must be 40 hex digits followed by @lifescience-ri.eu'),
  name: nonEmpty,
  given_name: nonEmpty,
  family_name: nonEmpty,
  email: z.string().trim().toLowerCase().pipe(z.email()),
  email_verified: z.boolean(),
  entitlements: z.array(nonEmpty).default([]),
  affiliations: z.array(z.string().trim().regex(/^[a-z-]+@[^@\s]+$/, 'expected affiliation@domain, e.g. member@university.example')).default([]),
  home_organization: nonEmpty,
});

const fileSchema = z.object({ users: z.array(z.unknown()).min(1, 'at least one user is needed') });

export type DevUser = Readonly<z.output<typeof userSchema>>;

/** The claims LS AAI releases for a user, keyed by the claim names of its userinfo endpoint. */
export function claimsOf(user: DevUser): Record<string, unknown> & { sub: string } {
  return {
    sub: user.sub,
    name: user.name,
    given_name: user.given_name,
    family_name: user.family_name,
    email: user.email,
    email_verified: user.email_verified,
    eduperson_entitlement: [...user.entitlements],
    voperson_external_affiliation: [...user.affiliations],
    schac_home_organization: user.home_organization,
  };
}

function invalid(file: string, message: string): ConfigError {
  return new ConfigError('DEV_AAI_USERS', `${file}: ${message}`);
}

/**
 * Reads and validates the test users file. A bad entry stops start-up with the file and
 * the entry named (index and username when there is one), as the main config does.
 */
export function loadDevUsers(file: string): DevUser[] {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw invalid(file, `cannot read the test users: ${(err as Error).message}`);
  }
  const top = fileSchema.safeParse(raw);
  if (!top.success) throw invalid(file, `expected a "users:" list (${top.error.issues[0]!.message})`);

  const users: DevUser[] = [];
  const seen = new Set<string>();
  for (const [i, entry] of top.data.users.entries()) {
    const label = `users[${i}]${typeof (entry as { username?: unknown })?.username === 'string' ? ` (${(entry as { username: string }).username})` : ''}`;
    const parsed = userSchema.safeParse(entry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw invalid(file, `${label}${issue.path.length ? `.${issue.path.join('.')}` : ''}: ${issue.message}`);
    }
    for (const key of [`username ${parsed.data.username}`, `sub ${parsed.data.sub}`]) {
      if (seen.has(key)) throw invalid(file, `${label}: duplicate ${key}`);
      seen.add(key);
    }
    users.push(Object.freeze(parsed.data));
  }
  return users;
}
