import type { Config } from '../config/load.ts';
import type { DevAaiClient } from './provider.ts';

/**
 * helpgate's portal as a client of the stand-in, from the configuration: the same client
 * id and secret the portal presents, its callback and its post-logout landing page.
 */
export function devAaiClientFor(config: Config): DevAaiClient {
  return {
    clientId: config.oidc.clientId,
    clientSecret: config.oidc.clientSecret,
    redirectUris: [`${config.publicUrl}/auth/callback`],
    postLogoutRedirectUris: [`${config.publicUrl}/`],
  };
}
