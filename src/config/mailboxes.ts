import { z } from 'zod';
import { ConfigError } from '../errors/errors.ts';

/**
 * A mailbox helpgate reads (the `mailboxes:` list of the configuration file). Secrets may be
 * written in the file or, better, named there and read from the environment
 * (`passwordEnv`, `accessTokenEnv`).
 */
export const mailboxSchema = z
  .object({
    /** Names the mailbox in the lease, the checkpoint, `helpgate status` and the inbox. */
    name: z.string().trim().regex(/^[a-z][a-z0-9-]{0,31}$/, 'lower-case letters, digits and "-"'),
    host: z.string().trim().min(1),
    port: z.coerce.number().int().min(1).max(65535).optional(),
    /** implicit: TLS from the first byte (993); starttls: upgrade on 143; none: plain text (local tests only). */
    tls: z.enum(['implicit', 'starttls', 'none']).default('implicit'),
    user: z.string().min(1),
    password: z.string().min(1).optional(),
    passwordEnv: z.string().trim().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name').optional(),
    /** OAuth2 access token (Microsoft 365, Gmail): XOAUTH2 / OAUTHBEARER. */
    accessToken: z.string().min(1).optional(),
    accessTokenEnv: z.string().trim().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name').optional(),
    folder: z.string().min(1).default('INBOX'),
    /** Once a message is stored: move it (default), flag it \Seen, or delete it. */
    afterStore: z.enum(['move', 'seen', 'delete']).default('move'),
    moveTo: z.string().min(1).default('Processed'),
    /** Where messages over MAX_MESSAGE_SIZE go (their sender is told once). */
    tooLargeFolder: z.string().min(1).default('Too large'),
    /** Safety-net poll even with IDLE; the only way to notice mail where the server has no IDLE. */
    pollSeconds: z.coerce.number().min(0.1).default(60),
    idle: z.boolean().default(true),
  })
  .superRefine((m, ctx) => {
    const secrets = [m.password, m.passwordEnv, m.accessToken, m.accessTokenEnv].filter((x) => x !== undefined);
    if (secrets.length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of password, passwordEnv, accessToken, accessTokenEnv' });
    }
  });

export const mailboxListSchema = z
  .array(mailboxSchema)
  .default([])
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    for (const [i, m] of list.entries()) {
      if (seen.has(m.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate mailbox name ${m.name}` });
      seen.add(m.name);
    }
  });

export interface MailboxConfig {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly tls: 'implicit' | 'starttls' | 'none';
  readonly user: string;
  /** Exactly one of these is set. */
  readonly password: string | null;
  readonly accessToken: string | null;
  readonly folder: string;
  readonly afterStore: 'move' | 'seen' | 'delete';
  readonly moveTo: string;
  readonly tooLargeFolder: string;
  readonly pollSeconds: number;
  readonly idle: boolean;
}

/** Settings shared by every mailbox reader (environment variables). */
export interface ImapSettings {
  /** How long a reader's lease lasts without a heartbeat; another process takes over after it. */
  readonly leaseSeconds: number;
  /** Longest wait for one IMAP command before the connection is dropped and made again. */
  readonly commandTimeoutSeconds: number;
  /** Reconnect backoff: doubles from 1 s up to this, with jitter. */
  readonly retryMaxSeconds: number;
  /** Wait after a refused login (a wrong password is not fixed by retrying quickly). */
  readonly authRetrySeconds: number;
  /** Messages fetched per FETCH (bodies together at most BATCH_BYTES). */
  readonly batch: number;
}

/** The file's entries with their secrets read from the environment; a missing one names its variable. */
export function resolveMailboxes(list: z.output<typeof mailboxListSchema>, env: Record<string, string | undefined>, where: string): MailboxConfig[] {
  return list.map((m, i) => {
    const fromEnv = (variable: string | undefined): string | null => {
      if (!variable) return null;
      const value = env[variable];
      if (!value) throw new ConfigError(variable, `not set, but ${where}.mailboxes.${i} (${m.name}) takes its secret from it`);
      return value;
    };
    return {
      name: m.name,
      host: m.host,
      port: m.port ?? (m.tls === 'implicit' ? 993 : 143),
      tls: m.tls,
      user: m.user,
      password: m.password ?? fromEnv(m.passwordEnv),
      accessToken: m.accessToken ?? fromEnv(m.accessTokenEnv),
      folder: m.folder,
      afterStore: m.afterStore,
      moveTo: m.moveTo,
      tooLargeFolder: m.tooLargeFolder,
      pollSeconds: m.pollSeconds,
      idle: m.idle,
    };
  });
}
