/** Typed errors shared by every layer. They carry a machine-readable code and context. */

export class HelpgateError extends Error {
  readonly code: string;
  readonly context: Record<string, unknown>;

  constructor(code: string, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
}

/** An invalid setting: start-up stops and names the variable. */
export class ConfigError extends HelpgateError {
  constructor(readonly variable: string, message: string) {
    super('config_invalid', `${variable}: ${message}`, { variable });
  }
}

/** The database could not be reached or refused a write; callers answer "try again later". */
export class StoreUnavailableError extends HelpgateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('store_unavailable', message, {}, options);
  }
}

/** No database engine could be found or started. */
export class NoDatabaseError extends HelpgateError {
  constructor(message: string) {
    super('no_database', message);
  }
}

/** An SMTP answer with its reply code, e.g. 550 for an unknown recipient. */
export class SmtpReplyError extends HelpgateError {
  readonly responseCode: number;
  constructor(responseCode: number, message: string) {
    super('smtp_reply', message, { responseCode });
    this.responseCode = responseCode;
  }
}

/** Input a caller sent that cannot be used (a missing `sub`, a malformed address): answer 400. */
export class InvalidInputError extends HelpgateError {
  constructor(readonly field: string, message: string) {
    super('invalid_input', `${field}: ${message}`, { field });
  }
}

export class NotFoundError extends HelpgateError {
  constructor(what: string, id: string | number) {
    super('not_found', `${what} ${id} not found`, { what, id });
  }
}

/** MongoDB's duplicate key error: for an idempotency key it means "already done". */
export function isDuplicateKeyError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 11000;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
