import type { Logger } from '../log/logger.ts';

/** Runs until SIGINT or SIGTERM, then stops the service (logging, never throwing, if that fails). */
export function stopOnSignal(log: Logger, stop: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'stopping');
      stop().then(resolve, (err) => {
        log.error({ err: String(err) }, 'error while stopping');
        resolve();
      });
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });
}
