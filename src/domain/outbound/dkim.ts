import { createPrivateKey, createPublicKey, generateKeyPair } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Config } from '../../config/load.ts';
import { insertOnce } from '../../db/coordination/index.ts';
import type { Store } from '../../db/store.ts';
import { ConfigError } from '../../errors/errors.ts';

/** What the outbox worker signs every mail with (nodemailer's `dkim` option). */
export interface DkimSigning {
  domainName: string;
  keySelector: string;
  /** PEM (PKCS#8 or PKCS#1). */
  privateKey: string;
}

const SECRET_ID = 'dkim-key';
const KEY_BITS = 2048;

/**
 * The DKIM key: DKIM_PRIVATE_KEY_FILE, or one made at first start and kept in the database (like
 * the reply-token key), so that every helpgate process signs with the key whose public half is
 * published. A key file that cannot be read or is not an RSA private key stops the start.
 */
export async function dkimSigning(store: Store | null, config: Config): Promise<DkimSigning> {
  if (!config.dkim.keyFile && !store) throw new Error('dkimSigning: the key is in the database, but no database was given');
  const privateKey = config.dkim.keyFile ? readKeyFile(config.dkim.keyFile) : await storedKey(store!);
  return { domainName: config.dkim.domain, keySelector: config.dkim.selector, privateKey };
}

function readKeyFile(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('DKIM_PRIVATE_KEY_FILE', `cannot read ${file}: ${(err as Error).message}`);
  }
  let type: string | undefined;
  try {
    type = createPrivateKey(pem).asymmetricKeyType;
  } catch (err) {
    throw new ConfigError('DKIM_PRIVATE_KEY_FILE', `${file} holds no private key in PEM: ${(err as Error).message}`);
  }
  if (type !== 'rsa') throw new ConfigError('DKIM_PRIVATE_KEY_FILE', `${file} holds a ${type} key; DKIM needs an RSA key (e.g. openssl genrsa 2048)`);
  return pem;
}

async function storedKey(store: Store): Promise<string> {
  const { Secret } = store.models;
  const found = await Secret.findById(SECRET_ID).lean<{ value: string }>();
  if (found) return found.value;
  const { privateKey } = await promisify(generateKeyPair)('rsa', {
    modulusLength: KEY_BITS,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  // Two processes starting at once each make a key; the first stored is everyone's.
  const { doc } = await insertOnce<{ value: string }>(Secret, { _id: SECRET_ID, value: privateKey });
  return doc.value;
}

/** The DNS TXT record that publishes the public half of the key (RFC 6376, section 3.6.1). */
export function dkimDnsRecord(signing: DkimSigning): { name: string; value: string } {
  const p = createPublicKey(signing.privateKey).export({ type: 'spki', format: 'der' }).toString('base64');
  return { name: `${signing.keySelector}._domainkey.${signing.domainName}`, value: `v=DKIM1; k=rsa; p=${p}` };
}
