import { createHash, generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors/errors.ts';

/** The stand-in's secrets: the id token signing key and the keys that sign its cookies. */
export interface DevAaiKeys {
  /** A private RSA JWK with kid, alg RS256 and use sig. */
  readonly signingKey: JsonWebKey;
  readonly cookieKeys: readonly string[];
}

const keysSchema = z.object({
  signingKey: z.looseObject({ kty: z.literal('RSA'), kid: z.string().min(1), n: z.string().min(1), e: z.string().min(1), d: z.string().min(1) }),
  cookieKeys: z.array(z.string().min(32)).min(1),
});

/** RFC 7638 thumbprint: a kid that is stable for the key and says nothing else. */
function thumbprint(jwk: JsonWebKey): string {
  return createHash('sha256').update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })).digest('base64url');
}

function generateKeys(): DevAaiKeys {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    signingKey: { ...jwk, kid: thumbprint(jwk), alg: 'RS256', use: 'sig' },
    cookieKeys: [randomBytes(32).toString('base64url')],
  };
}

/**
 * Without a file every start makes new keys, which suits tests. With one the keys are made
 * once and reused, so tokens and cookies issued before a restart of `npm start` still
 * verify. The file holds a private key: it is written readable by its owner only.
 */
export function loadOrCreateKeys(file?: string): DevAaiKeys {
  if (!file) return generateKeys();
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(file, `cannot read the dev LS AAI keys: ${(err as Error).message}`);
  }
  if (text !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(file, `not JSON (${(err as Error).message}); delete it to make new dev LS AAI keys`);
    }
    const parsed = keysSchema.safeParse(json);
    if (!parsed.success) throw new ConfigError(file, `not a dev LS AAI key file (${parsed.error.issues[0]!.message}); delete it to make new keys`);
    return parsed.data as DevAaiKeys;
  }
  const keys = generateKeys();
  mkdirSync(path.dirname(file), { recursive: true });
  // Write then rename, so a crash never leaves half a key file behind.
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, file);
  return keys;
}
