import { z } from 'zod';
import { mailboxListSchema } from './mailboxes.ts';

/** Sizes such as "25MB", "512 KB" or plain bytes. MB means 1024 * 1024 bytes, as mail servers count. */
const byteSize = z
  .string()
  .trim()
  .regex(/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i, 'expected a size such as 25MB, 512KB or a number of bytes')
  .transform((s) => {
    const m = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(s)!;
    const unit = (m[2] ?? 'b').toLowerCase();
    const factor = unit === 'gb' ? 1024 ** 3 : unit === 'mb' ? 1024 ** 2 : unit === 'kb' ? 1024 : 1;
    return Math.floor(Number(m[1]) * factor);
  })
  .pipe(z.number().int().min(1024, 'must be at least 1KB'));

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().min(1);
const emailAddress = z.string().trim().toLowerCase().pipe(z.email());

const secondsList = z
  .string()
  .trim()
  .regex(/^\d+(\.\d+)?(\s*,\s*\d+(\.\d+)?)*$/, 'expected a comma-separated list of seconds, e.g. 60,300,900')
  .transform((s) => s.split(',').map((x) => Number(x.trim())));

const urlWith = (protocols: string[]) =>
  z
    .string()
    .trim()
    .pipe(z.url())
    .refine((u) => protocols.includes(new URL(u).protocol), `must start with ${protocols.join(' or ')}//`);

/** Environment variables: names are the variables themselves, so an error can name them. */
export const envSchema = z.object({
  MONGODB_URI: z.string().trim().regex(/^mongodb(\+srv)?:\/\//, 'must be a mongodb:// or mongodb+srv:// URI').optional(),
  MONGODB_TIMEOUT_MS: positiveInt.default(5000),
  HELPGATE_DATA_DIR: z.string().trim().min(1).default('./data'),
  /** Force the embedded engine instead of the order mongod → FerretDB on PostgreSQL → FerretDB on SQLite. */
  HELPGATE_ENGINE: z.enum(['postgresql', 'sqlite'], { message: 'expected "postgresql" or "sqlite"' }).optional(),
  /** How long a dead engine process may take to come back before helpgate exits (non-zero, for its supervisor). */
  HELPGATE_ENGINE_RESTART_SECONDS: positiveInt.default(60),
  HELPGATE_TOOLS_DIR: z.string().trim().min(1).optional(),
  HELPGATE_CONFIG: z.string().trim().min(1).optional(),
  SMTP_HOST: z.string().trim().min(1).default('127.0.0.1'),
  SMTP_PORT: port.default(2525),
  HELPDESK_ADDRESS: emailAddress.default('help@helpdesk.localhost'),
  HELPDESK_NAME: z.string().trim().min(1).max(100).default('Cancer Image Europe Helpdesk'),
  PUBLIC_URL: urlWith(['http:', 'https:']).default('http://localhost:3000'),
  TICKET_PREFIX: z
    .string()
    .trim()
    .regex(/^[A-Za-z][A-Za-z0-9-]{0,15}$/, 'letters, digits and "-", starting with a letter, at most 16')
    .default('CIE'),
  OUTBOUND_SMTP_URL: urlWith(['smtp:', 'smtps:']).optional(),
  MAX_MESSAGE_SIZE: byteSize.default(25 * 1024 * 1024),
  /** SMTP sessions at once, all clients together, and per client address. */
  SMTP_MAX_CLIENTS: positiveInt.default(200),
  SMTP_MAX_CLIENTS_PER_IP: positiveInt.default(20),
  /** A session that starts no mail transaction for this long is closed (NOOP does not count). */
  SMTP_IDLE_SECONDS: positiveInt.default(60),
  /** Commands that send no mail (NOOP, RSET, VRFY, HELP, …) allowed per session. */
  SMTP_MAX_JUNK_COMMANDS: positiveInt.default(100),
  ACK_RATE_LIMIT_PER_HOUR: z.coerce.number().int().min(0).default(10),
  INGEST_MAX_ATTEMPTS: positiveInt.default(5),
  INGEST_LEASE_SECONDS: positiveInt.default(30),
  INGEST_CONCURRENCY: positiveInt.default(4),
  OUTBOX_BACKOFF_SECONDS: secondsList.default([60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 86400, 86400]),
  OUTBOX_LEASE_SECONDS: positiveInt.default(120),
  /** "true": this process queues outbound mail but does not send it (like Postfix's hold queue); another process, or this one restarted without it, sends it. */
  OUTBOX_HOLD: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** Prometheus metrics on a listener of their own (no token needed there); unset: none. */
  METRICS_PORT: port.optional(),
  METRICS_HOST: z.string().trim().min(1).default('127.0.0.1'),
  /** Bearer token that opens /metrics on the portal (and on METRICS_PORT, if set there too). */
  METRICS_TOKEN: z.string().trim().min(16, 'must be at least 16 characters').optional(),
  /** Outbound mail due this long without being sent makes the process not ready (/readyz). */
  OUTBOX_STALLED_SECONDS: positiveInt.default(900),
  HTTP_HOST: z.string().trim().min(1).default('127.0.0.1'),
  HTTP_PORT: port.default(3000),
  OIDC_ISSUER: urlWith(['http:', 'https:']).optional(),
  OIDC_CLIENT_ID: z.string().trim().min(1).optional(),
  OIDC_CLIENT_SECRET: z.string().trim().min(1).optional(),
  DEV_AAI_HOST: z.string().trim().min(1).default('127.0.0.1'),
  DEV_AAI_PORT: port.default(3001),
  DEV_AAI_USERS: z.string().trim().min(1).optional(),
  REQUIRED_ENTITLEMENT: z.string().trim().default('urn:geant:lifescience-ri.eu:group:EUCAIM#aai.lifescience-ri.eu'),
  AGENT_ENTITLEMENT: z.string().trim().optional(),
  AUP_FILE: z.string().trim().min(1).optional(),
  UNBOUND_SENDERS: z.enum(['hold', 'accept']).default('hold'),
  HOLD_DAYS: positiveInt.default(14),
  /** Mail whose sender DMARC, a trusted hop or a reply token does not vouch for: "flag" keeps it as an unverified mail that changes nothing; "accept" takes From: at its word when the domain publishes no DMARC. */
  UNAUTHENTICATED_SENDERS: z.enum(['flag', 'accept'], { message: 'expected "flag" or "accept"' }).default('flag'),
  /** authserv-ids of the hops (our MTA, the IMAP provider) whose Authentication-Results count. */
  TRUSTED_AUTHSERV_IDS: z
    .string()
    .trim()
    .regex(/^[^\s,;]+(\s*,\s*[^\s,;]+)*$/, 'expected a comma-separated list of authserv-ids, e.g. mx.example.org')
    .transform((s) => s.split(',').map((x) => x.trim().toLowerCase()))
    .optional(),
  /** Bound on one DNS look-up of sender verification. */
  DNS_TIMEOUT_SECONDS: z.coerce.number().positive().max(60).default(5),
  /** Days an erasure request waits for an agent of First Line before the daily job carries it out. */
  ERASURE_GRACE_DAYS: z.coerce.number().int().min(0).default(30),
  /** Key of the HMAC in agents' reply addresses; default: one made at first start and kept in the database. */
  REPLY_TOKEN_SECRET: z.string().trim().min(32, 'must be at least 32 characters').optional(),
  /** DKIM signing of outbound mail: a PEM private key file; default: a 2048-bit key made at first start and kept in the database. */
  DKIM_PRIVATE_KEY_FILE: z.string().trim().min(1).optional(),
  /** The selector of the DKIM key: its public key is published at <selector>._domainkey.<domain> (`helpgate dkim`). */
  DKIM_SELECTOR: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'a DNS label such as helpgate or 2026a')
    .default('helpgate'),
  /** The signing domain (d=); default: the helpdesk address's domain. Must be it or a parent of it for DMARC alignment. */
  DKIM_DOMAIN: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/, 'a domain name such as example.org')
    .optional(),
  /** How often each process looks for due timers. */
  TIMER_INTERVAL_SECONDS: positiveInt.default(60),
  IMAP_LEASE_SECONDS: positiveInt.default(60),
  IMAP_COMMAND_TIMEOUT_SECONDS: positiveInt.default(120),
  IMAP_RETRY_MAX_SECONDS: positiveInt.default(300),
  IMAP_AUTH_RETRY_SECONDS: positiveInt.default(600),
  IMAP_BATCH: positiveInt.default(50),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Env = z.output<typeof envSchema>;

export const unitSchema = z.object({
  key: z.string().trim().regex(/^[a-z][a-z0-9-]{0,31}$/, 'lower-case letters, digits and "-"'),
  name: z.string().trim().min(1),
  address: emailAddress,
  entry: z.boolean().default(false),
  members: z.array(emailAddress).default([]),
});

const RETENTION_DEFAULTS = { rawMailDays: 90, heldMailDays: 90, outboundDays: 90, closedTicketAttachmentsMonths: null };
const retentionSchema = z
  .object({
    /** Raw messages (the .eml as received) of ingested mail, this many days after they arrived. */
    rawMailDays: z.number().int().positive().default(90),
    /** Held mail nobody claimed: its raw message HOLD_DAYS + this many days after it arrived. */
    heldMailDays: z.number().int().positive().default(90),
    /** Text, HTML and MIME copy of sent (or captured) outbound mail, this many days after sending. */
    outboundDays: z.number().int().positive().default(90),
    /** Attachments of tickets closed this many months ago; null (the default) keeps them. */
    closedTicketAttachmentsMonths: z.number().int().positive().nullable().default(null),
  })
  .strict()
  .default(RETENTION_DEFAULTS);

export const fileSchema = z
  .object({
    units: z.array(unitSchema).min(1, 'at least one Support Unit is needed'),
    /** What a person picks as "Category" for a new ticket on the web. */
    categories: z
      .array(z.object({ key: z.string().trim().regex(/^[a-z][a-z0-9-]{0,31}$/, 'lower-case letters, digits and "-"'), name: z.string().trim().min(1) }))
      .min(1)
      .default([{ key: 'general', name: 'General question' }]),
    /** GGUS timers, in working days (Mon–Fri). */
    timers: z
      .object({
        /** Reminders to the requester of a ticket waiting for their reply. */
        waitingReminders: z.array(z.number().positive()).max(5).default([5, 10]),
        /** Waiting this long without a reply → unsolved. */
        waitingUnsolved: z.number().positive().default(15),
        /** Solved this long without a reply → closed. */
        solvedClose: z.number().positive().default(10),
        /** A reply this long after the solution reopens the ticket; a later one opens a new ticket. */
        reopenWindow: z.number().positive().default(10),
        /** First-response target per priority. */
        firstResponse: z
          .object({
            'less urgent': z.number().positive().default(2),
            urgent: z.number().positive().default(1),
            'very urgent': z.number().positive().default(0.5),
            'top priority': z.number().positive().default(0.25),
          })
          .default({ 'less urgent': 2, urgent: 1, 'very urgent': 0.5, 'top priority': 0.25 }),
      })
      .superRefine((t, ctx) => {
        if (t.waitingReminders.some((r) => r >= t.waitingUnsolved)) ctx.addIssue({ code: 'custom', path: ['waitingReminders'], message: 'every reminder must come before waitingUnsolved' });
        if (t.reopenWindow > t.solvedClose) ctx.addIssue({ code: 'custom', path: ['reopenWindow'], message: 'cannot be longer than solvedClose (a closed ticket is not reopened)' });
      })
      .default({ waitingReminders: [5, 10], waitingUnsolved: 15, solvedClose: 10, reopenWindow: 10, firstResponse: { 'less urgent': 2, urgent: 1, 'very urgent': 0.5, 'top priority': 0.25 } }),
    /** Mailboxes read over IMAP (config/mailboxes.ts). */
    mailboxes: mailboxListSchema,
    /** How long personal data in mail is kept (docs/privacy.md); applied by the daily job. */
    retention: retentionSchema,
  })
  .superRefine((file, ctx) => {
    const entries = file.units.filter((u) => u.entry);
    if (entries.length !== 1) {
      ctx.addIssue({ code: 'custom', path: ['units'], message: `exactly one unit must have "entry: true" (found ${entries.length})` });
    }
    const seen = new Set<string>();
    for (const [i, u] of file.units.entries()) {
      for (const v of [`key:${u.key}`, `address:${u.address}`]) {
        if (seen.has(v)) ctx.addIssue({ code: 'custom', path: ['units', i], message: `duplicate ${v.replace(':', ' ')}` });
        seen.add(v);
      }
    }
  });

export type SupportUnit = z.output<typeof unitSchema>;

export type Timers = z.output<typeof fileSchema>['timers'];
export type Retention = z.output<typeof fileSchema>['retention'];
