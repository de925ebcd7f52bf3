import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors/errors.ts';
import { envSchema, fileSchema, type SupportUnit } from './schema.ts';

/** The project's root folder (where package.json, templates/ and web/ live). */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The documented example, used as the default configuration file. */
export const exampleConfigPath = path.join(projectRoot, 'src/config/helpgate.example.yaml');

export interface Config {
  readonly mongodbUri: string | undefined;
  readonly mongodbTimeoutMs: number;
  readonly dataDir: string;
  readonly toolsDir: string;
  readonly configFile: string;
  readonly smtp: { readonly host: string; readonly port: number };
  readonly helpdesk: { readonly address: string; readonly name: string; readonly domain: string };
  readonly publicUrl: string;
  readonly ticketPrefix: string;
  readonly outboundSmtpUrl: string | undefined;
  readonly maxMessageSize: number;
  readonly ackRateLimitPerHour: number;
  readonly ingest: { readonly maxAttempts: number; readonly leaseSeconds: number; readonly concurrency: number };
  readonly outbox: { readonly backoffSeconds: readonly number[]; readonly leaseSeconds: number };
  readonly logLevel: string;
  readonly units: readonly SupportUnit[];
  readonly entryUnit: SupportUnit;
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
    configFile,
    smtp: { host: e.SMTP_HOST, port: e.SMTP_PORT },
    helpdesk: { address: e.HELPDESK_ADDRESS, name: e.HELPDESK_NAME, domain },
    publicUrl: e.PUBLIC_URL.replace(/\/+$/, ''),
    ticketPrefix: e.TICKET_PREFIX,
    outboundSmtpUrl: e.OUTBOUND_SMTP_URL,
    maxMessageSize: e.MAX_MESSAGE_SIZE,
    ackRateLimitPerHour: e.ACK_RATE_LIMIT_PER_HOUR,
    ingest: { maxAttempts: e.INGEST_MAX_ATTEMPTS, leaseSeconds: e.INGEST_LEASE_SECONDS, concurrency: e.INGEST_CONCURRENCY },
    outbox: { backoffSeconds: e.OUTBOX_BACKOFF_SECONDS, leaseSeconds: e.OUTBOX_LEASE_SECONDS },
    logLevel: e.LOG_LEVEL,
    units,
    entryUnit: units.find((u) => u.entry)!,
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
