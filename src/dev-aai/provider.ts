import Provider, { type ClientMetadata, type Configuration } from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import type { Logger } from '../log/logger.ts';
import type { DevAaiKeys } from './keys.ts';
import type { DevAaiPages } from './pages.ts';
import { claimsOf, type DevUser } from './users.ts';

/** A relying party the stand-in knows: helpgate's portal, registered like at LS AAI. */
export interface DevAaiClient {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUris: readonly string[];
  readonly postLogoutRedirectUris: readonly string[];
  /** Shown on the consent page; "helpgate" when not given. */
  readonly name?: string;
}

/** The scopes LS AAI offers and the claims each releases from its userinfo endpoint. */
export const SCOPE_CLAIMS: Readonly<Record<string, string[]>> = Object.freeze({
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name'],
  email: ['email', 'email_verified'],
  eduperson_entitlement: ['eduperson_entitlement'],
  voperson_external_affiliation: ['voperson_external_affiliation'],
  schac_home_organization: ['schac_home_organization'],
});

/**
 * oidc-provider's own in-memory storage (the 1000 most recently used entries, shared by
 * every provider in the process): enough for a stand-in that runs as one process and may
 * forget its sessions on restart. Handing it over as a subclass rather than the class
 * itself only keeps oidc-provider from printing its "not for production" warning on every
 * start, which is no news for a dev stand-in.
 */
class DevMemoryAdapter extends MemoryAdapter {}

/** Events oidc-provider emits when it answers a client or browser with an OAuth error. */
const CLIENT_ERROR_EVENTS = ['authorization.error', 'grant.error', 'userinfo.error', 'end_session.error', 'discovery.error', 'jwks.error'];

function clientMetadata(c: DevAaiClient): ClientMetadata {
  return {
    client_id: c.clientId,
    client_secret: c.clientSecret,
    client_name: c.name ?? 'helpgate',
    redirect_uris: [...c.redirectUris],
    post_logout_redirect_uris: [...c.postLogoutRedirectUris],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    // Registered as basic, like helpgate at LS AAI; oidc-provider accepts client_secret_post
    // from any client registered for a secret as well.
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  };
}

export function createProvider(opts: {
  issuer: string;
  users: readonly DevUser[];
  keys: DevAaiKeys;
  clients: readonly DevAaiClient[];
  pages: DevAaiPages;
  log: Logger;
}): Provider {
  const { pages, log } = opts;
  const bySub = new Map(opts.users.map((u) => [u.sub, u]));
  const configuration: Configuration = {
    adapter: DevMemoryAdapter,
    clients: opts.clients.map(clientMetadata),
    jwks: { keys: [opts.keys.signingKey] },
    cookies: {
      keys: [...opts.keys.cookieKeys],
      // Lax for the session cookie too (oidc-provider defaults to None): browsers drop
      // SameSite=None cookies that lack Secure, and the stand-in speaks plain http.
      // Secure itself is only set when the request came over https.
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    claims: { ...SCOPE_CLAIMS },
    scopes: Object.keys(SCOPE_CLAIMS),
    responseTypes: ['code'],
    // As at LS AAI: the id token carries sub and the token claims; everything the scopes
    // grant comes from the userinfo endpoint. (This is oidc-provider's default; said here
    // because helpgate relies on it.)
    conformIdTokenClaims: true,
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) =>
          pages.send(ctx, 200, 'logout', { title: 'Sign out', form, clientName: ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId }),
        postLogoutSuccessSource: (ctx) => pages.send(ctx, 200, 'logged-out', { title: 'Signed out' }),
      },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: async (_ctx, sub) => {
      const user = bySub.get(sub);
      return user && { accountId: sub, claims: () => claimsOf(user) };
    },
    renderError: (ctx, out) =>
      pages.send(ctx, undefined, 'error', { title: 'Sign-in error', error: out.error ?? 'server_error', description: out.error_description ?? '' }),
    // helpgate calls the token and userinfo endpoints from its server, never from a browser.
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
  };

  const provider = new Provider(opts.issuer, configuration);
  provider.on('server_error', (ctx: { path: string }, err: Error) => log.error({ err, path: ctx.path }, 'dev LS AAI server error'));
  for (const event of CLIENT_ERROR_EVENTS) {
    provider.on(event, (ctx: { path: string }, err: { error?: string; error_description?: string }) =>
      log.info({ event, path: ctx.path, error: err.error, description: err.error_description }, 'dev LS AAI answered with an error'),
    );
  }
  return provider;
}
