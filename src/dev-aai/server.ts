import { createServer, type IncomingMessage, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import type { Logger } from '../log/logger.ts';
import { interactionRouter } from './interactions.ts';
import { loadOrCreateKeys } from './keys.ts';
import { DevAaiPages } from './pages.ts';
import { createProvider, type DevAaiClient } from './provider.ts';
import { loadDevUsers, type DevUser } from './users.ts';

export type { DevAaiClient } from './provider.ts';
export type { DevUser } from './users.ts';

export interface DevAaiOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  usersFile: string;
  clients: readonly DevAaiClient[];
  log: Logger;
  /** Where the signing and cookie keys are kept across restarts; unset = new keys each start. */
  keysFile?: string;
}

export interface DevAai {
  /** `http://<host>:<port>/oidc/`, trailing slash included as LS AAI's own issuer has it. */
  readonly issuer: string;
  readonly port: number;
  readonly users: DevUser[];
  stop(): Promise<void>;
}

/** The path the provider is mounted at: LS AAI's issuer is https://login.aai.lifescience-ri.eu/oidc/. */
const MOUNT = '/oidc';

/**
 * Starts the dev LS AAI stand-in: oidc-provider under /oidc, our interaction pages under
 * /interaction. The users file and keys are read before anything listens, so a bad file
 * stops start-up with its name. The socket is opened before the provider is made because
 * the issuer contains the port, which is only known then when port 0 was asked for.
 */
export async function startDevAai(opts: DevAaiOptions): Promise<DevAai> {
  const users = loadDevUsers(opts.usersFile);
  const keys = loadOrCreateKeys(opts.keysFile);
  const log = opts.log.child({ component: 'dev-aai' });

  let handle: RequestListener = (_req, res) => {
    res.statusCode = 503;
    res.end('starting');
  };
  const server = createServer((req, res) => handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}${MOUNT}/`;

  const pages = new DevAaiPages();
  const provider = createProvider({ issuer, users, keys, clients: opts.clients, pages, log });
  const app = new Koa();
  // A listener replaces Koa's default handler, which would print to stderr.
  app.on('error', (err: Error) => log.error({ err }, 'dev LS AAI request failed'));

  const oidc = provider.callback();
  app.use(async (ctx, next) => {
    if (ctx.path !== MOUNT && !ctx.path.startsWith(`${MOUNT}/`)) return next();
    // Mounted the way oidc-provider documents for connect/express: strip the prefix from
    // req.url and keep the full one in req.originalUrl, from which it derives its own URLs.
    const req = ctx.req as IncomingMessage & { originalUrl?: string };
    req.originalUrl = req.url;
    req.url = req.url!.slice(MOUNT.length) || '/';
    ctx.respond = false;
    await oidc(req, ctx.res);
  });
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      log.error({ err, path: ctx.path }, 'dev LS AAI interaction failed');
      pages.send(ctx, 500, 'error', { title: 'Sign-in error', error: 'server_error', description: 'The sign-in failed on our side; the log says why.' });
    }
  });
  const interactions = interactionRouter({ provider, users, pages, log });
  app.use(interactions.routes()).use(interactions.allowedMethods());
  handle = app.callback();

  log.info({ issuer, users: users.length, clients: opts.clients.map((c) => c.clientId) }, 'dev LS AAI stand-in listening');
  return {
    issuer,
    port,
    users,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive connections (browsers, fetch) would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}
