import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One structured line per event on stderr, so stdout stays free for command output.
 * Never log secrets or mail bodies: log ids, addresses and sizes.
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', name = 'helpgate'): Logger {
  return pino({ name, level }, pino.destination(2));
}
