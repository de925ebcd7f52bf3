import path from 'node:path';
import type { Config } from '../../config/load.ts';
import { devAaiClientFor } from '../../dev-aai/client.ts';
import { startDevAai, type DevAai } from '../../dev-aai/server.ts';
import { createLogger } from '../../log/logger.ts';
import { stopOnSignal } from '../until-signal.ts';

/** Kept in the data folder, so a restart keeps issued tokens verifiable. */
export function devAaiKeysFile(config: Config): string {
  return path.join(config.dataDir, 'dev-aai-keys.json');
}

export function devAaiBanner(aai: DevAai, config: Config): string {
  const client = devAaiClientFor(config);
  const width = Math.max(...aai.users.map((u) => u.username.length));
  const pwWidth = Math.max(...aai.users.map((u) => u.password.length));
  return [
    'dev LS AAI stand-in is running (for development and tests only)',
    `  Issuer        ${aai.issuer}`,
    `  Discovery     ${aai.issuer}.well-known/openid-configuration`,
    `  Client        ${client.clientId}, redirect ${client.redirectUris.join(' ')}`,
    `  Users file    ${config.devAai.usersFile}`,
    '  Test users (username / password):',
    ...aai.users.map((u) => `    ${u.username.padEnd(width)}  ${u.password.padEnd(pwWidth)}  ${u.about}`),
    'Stop with Ctrl-C.',
  ].join('\n');
}

/** `helpgate dev-aai`: the stand-in alone, for running the portal against it by hand. */
export async function devAaiCommand(_args: string[], config: Config): Promise<number> {
  const log = createLogger(config.logLevel);
  const aai = await startDevAai({
    host: config.devAai.host,
    port: config.devAai.port,
    usersFile: config.devAai.usersFile,
    clients: [devAaiClientFor(config)],
    keysFile: devAaiKeysFile(config),
    log,
  });
  process.stdout.write(`${devAaiBanner(aai, config)}\n`);
  await stopOnSignal(log, () => aai.stop());
  return 0;
}
