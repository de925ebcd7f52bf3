import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors/errors.ts';
import { envSchema, fileSchema, type Retention, type SupportUnit, type Timers } from './schema.ts';
import { resolveMailboxes, type ImapSettings, type MailboxConfig } from './mailboxes.ts';

/** The project's root folder (where package.json, templates/ and web/ live). */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The documented example, used as the default configuration file. */
export const exampleConfigPath = path.join(projectRoot, 'src/config/helpgate.example.yaml');

/** The dev LS AAI stand-in's test users (documented in the file). */
export const devAaiUsersPath = path.join(projectRoot, 'src/config/dev-aai-users.yaml');

/** The Acceptable Use Policy shown at "Confirm your information"; its front matter carries the version. */
export const defaultAupPath = path.join(projectRoot, 'templates/aup.md');

export interface Config {
  readonly mongodbUri: string | undefined;
  readonly mongodbTimeoutMs: number;
  readonly dataDir: string;
  readonly toolsDir: string;
  /** The embedded engine to use, when forced (HELPGATE_ENGINE); null = the default order. */
  readonly engine: 'postgresql' | 'sqlite' | null;
  /** Bound on bringing a dead engine process back (HELPGATE_ENGINE_RESTART_SECONDS). */
  readonly engineRestartSeconds: number;
  readonly configFile: string;
  readonly smtp: {
    readonly host: string;
    readonly port: number;
    readonly maxClients: number;
    readonly maxClientsPerAddress: number;
    readonly idleSeconds: number;
    readonly maxJunkCommands: number;
  };
  readonly helpdesk: { readonly address: string; readonly name: string; readonly domain: string };
  readonly publicUrl: string;
  readonly ticketPrefix: string;
  readonly outboundSmtpUrl: string | undefined;
  readonly maxMessageSize: number;
  readonly ackRateLimitPerHour: number;
  readonly ingest: { readonly maxAttempts: number; readonly leaseSeconds: number; readonly concurrency: number };
  readonly outbox: { readonly backoffSeconds: readonly number[]; readonly leaseSeconds: number; readonly hold: boolean; readonly stalledSeconds: number };
  readonly http: { readonly host: string; readonly port: number };
  /** Prometheus metrics: their own listener (port null: none) and the token that opens them on the portal. */
  readonly metrics: { readonly host: string; readonly port: number | null; readonly token: string | null };
  /** The LS AAI (or any OpenID Provider); null issuer = start the dev stand-in. */
  readonly oidc: { readonly issuer: string | null; readonly clientId: string; readonly clientSecret: string };
  readonly devAai: { readonly host: string; readonly port: number; readonly usersFile: string };
  /** Needed to enter the portal; null = any signed-in LS AAI user. */
  readonly requiredEntitlement: string | null;
  /** Makes its holder an agent (besides the SU members' bound addresses); null = none. */
  readonly agentEntitlement: string | null;
  readonly aupFile: string;
  readonly unboundSenders: 'hold' | 'accept';
  readonly holdDays: number;
  /** Sender authentication (domain/ingest/sender-trust.ts): the mode, the trusted hops, the DNS bound. */
  readonly senderAuth: { readonly unauthenticated: 'flag' | 'accept'; readonly trustedAuthservIds: readonly string[]; readonly dnsTimeoutMs: number };
  /** Days an erasure request waits before the daily job carries it out (ERASURE_GRACE_DAYS). */
  readonly erasureGraceDays: number;
  /** The retention rules of the configuration file (docs/privacy.md). */
  readonly retention: Retention;
  readonly categories: readonly { readonly key: string; readonly name: string }[];
  readonly logLevel: string;
  readonly timers: Timers;
  readonly replyTokenSecret: string | null;
  /** DKIM signing of outbound mail: keyFile null = the key kept in the database. */
  readonly dkim: { readonly keyFile: string | null; readonly selector: string; readonly domain: string };
  readonly timerIntervalSeconds: number;
  readonly units: readonly SupportUnit[];
  readonly entryUnit: SupportUnit;
  readonly mailboxes: readonly MailboxConfig[];
  readonly imap: ImapSettings;
}

function firstIssue(error: z.ZodError, prefix: string): ConfigError {
  const issue = error.issues[0]!;
  const where = issue.path.length ? `${prefix}${prefix ? '.' : ''}${issue.path.join('.')}` : prefix;
  return new ConfigError(where || 'config', issue.message);
}

function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('HELPGATE_CONFIG', `cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError('HELPGATE_CONFIG', `${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
}

/**
 * Reads and validates the whole configuration once. Throws a ConfigError naming the bad
 * variable (or the file path of the bad entry); the result is frozen.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty variables count as unset, as in most shells' `VAR= cmd`.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsedEnv = envSchema.safeParse(cleaned);
  if (!parsedEnv.success) throw firstIssue(parsedEnv.error, '');
  const e = parsedEnv.data;
  if (e.OIDC_ISSUER && (!e.OIDC_CLIENT_ID || !e.OIDC_CLIENT_SECRET)) {
    throw new ConfigError(e.OIDC_CLIENT_ID ? 'OIDC_CLIENT_SECRET' : 'OIDC_CLIENT_ID', 'must be set when OIDC_ISSUER is set (the values of your LS AAI service registration)');
  }

  const configFile = path.resolve(e.HELPGATE_CONFIG ?? exampleConfigPath);
  const parsedFile = fileSchema.safeParse(readConfigFile(configFile));
  if (!parsedFile.success) throw firstIssue(parsedFile.error, `HELPGATE_CONFIG(${path.basename(configFile)})`);
  const units = parsedFile.data.units;

  const domain = e.HELPDESK_ADDRESS.split('@')[1]!;
  const config: Config = {
    mongodbUri: e.MONGODB_URI,
    mongodbTimeoutMs: e.MONGODB_TIMEOUT_MS,
    dataDir: path.resolve(e.HELPGATE_DATA_DIR),
    toolsDir: path.resolve(e.HELPGATE_TOOLS_DIR ?? path.join(projectRoot, '.tools')),
    engine: e.HELPGATE_ENGINE ?? null,
    engineRestartSeconds: e.HELPGATE_ENGINE_RESTART_SECONDS,
    configFile,
    smtp: {
      host: e.SMTP_HOST,
      port: e.SMTP_PORT,
      maxClients: e.SMTP_MAX_CLIENTS,
      maxClientsPerAddress: e.SMTP_MAX_CLIENTS_PER_IP,
      idleSeconds: e.SMTP_IDLE_SECONDS,
      maxJunkCommands: e.SMTP_MAX_JUNK_COMMANDS,
    },
    helpdesk: { address: e.HELPDESK_ADDRESS, name: e.HELPDESK_NAME, domain },
    publicUrl: e.PUBLIC_URL.replace(/\/+$/, ''),
    ticketPrefix: e.TICKET_PREFIX,
    outboundSmtpUrl: e.OUTBOUND_SMTP_URL,
    maxMessageSize: e.MAX_MESSAGE_SIZE,
    ackRateLimitPerHour: e.ACK_RATE_LIMIT_PER_HOUR,
    ingest: { maxAttempts: e.INGEST_MAX_ATTEMPTS, leaseSeconds: e.INGEST_LEASE_SECONDS, concurrency: e.INGEST_CONCURRENCY },
    outbox: { backoffSeconds: e.OUTBOX_BACKOFF_SECONDS, leaseSeconds: e.OUTBOX_LEASE_SECONDS, hold: e.OUTBOX_HOLD, stalledSeconds: e.OUTBOX_STALLED_SECONDS },
    http: { host: e.HTTP_HOST, port: e.HTTP_PORT },
    metrics: { host: e.METRICS_HOST, port: e.METRICS_PORT ?? null, token: e.METRICS_TOKEN ?? null },
    oidc: {
      issuer: e.OIDC_ISSUER ?? null,
      clientId: e.OIDC_CLIENT_ID ?? 'helpgate-dev',
      clientSecret: e.OIDC_CLIENT_SECRET ?? 'helpgate-dev-secret',
    },
    devAai: { host: e.DEV_AAI_HOST, port: e.DEV_AAI_PORT, usersFile: path.resolve(e.DEV_AAI_USERS ?? devAaiUsersPath) },
    // Set but empty means "any LS AAI user" (the cleaning above would otherwise restore the default).
    requiredEntitlement: env.REQUIRED_ENTITLEMENT === '' ? null : e.REQUIRED_ENTITLEMENT || null,
    agentEntitlement: e.AGENT_ENTITLEMENT || null,
    aupFile: path.resolve(e.AUP_FILE ?? defaultAupPath),
    unboundSenders: e.UNBOUND_SENDERS,
    holdDays: e.HOLD_DAYS,
    senderAuth: { unauthenticated: e.UNAUTHENTICATED_SENDERS, trustedAuthservIds: e.TRUSTED_AUTHSERV_IDS ?? [], dnsTimeoutMs: Math.round(e.DNS_TIMEOUT_SECONDS * 1000) },
    erasureGraceDays: e.ERASURE_GRACE_DAYS,
    retention: parsedFile.data.retention,
    categories: parsedFile.data.categories,
    logLevel: e.LOG_LEVEL,
    timers: parsedFile.data.timers,
    replyTokenSecret: e.REPLY_TOKEN_SECRET ?? null,
    dkim: { keyFile: e.DKIM_PRIVATE_KEY_FILE ? path.resolve(e.DKIM_PRIVATE_KEY_FILE) : null, selector: e.DKIM_SELECTOR, domain: e.DKIM_DOMAIN ?? domain },
    timerIntervalSeconds: e.TIMER_INTERVAL_SECONDS,
    units,
    entryUnit: units.find((u) => u.entry)!,
    mailboxes: resolveMailboxes(parsedFile.data.mailboxes, env, `HELPGATE_CONFIG(${path.basename(configFile)})`),
    imap: {
      leaseSeconds: e.IMAP_LEASE_SECONDS,
      commandTimeoutSeconds: e.IMAP_COMMAND_TIMEOUT_SECONDS,
      retryMaxSeconds: e.IMAP_RETRY_MAX_SECONDS,
      authRetrySeconds: e.IMAP_AUTH_RETRY_SECONDS,
      batch: e.IMAP_BATCH,
    },
  };
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
