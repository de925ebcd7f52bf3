import * as oidc from 'openid-client';
import { HelpgateError } from '../errors/errors.ts';

export interface RelyingPartyOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  postLogoutRedirectUri: string;
  /** Only for the local dev stand-in, which speaks plain http on the loopback. */
  allowInsecure: boolean;
}

/** Sign-in failed at or after the provider: shown to the person as a clear page, never a stack. */
export class SignInError extends HelpgateError {
  constructor(message: string, cause?: unknown) {
    super('sign-in-failed', message, {}, { cause });
  }
}

export interface Started {
  url: string;
  verifier: string;
  state: string;
  nonce: string;
}

/**
 * What helpgate asks LS AAI for: the identifier, name, e-mail, group memberships (the
 * entitlement check) and affiliations (shown on "Confirm your information" and Account).
 * LS AAI releases `voperson_external_affiliation` under a scope of the same name; each scope
 * must also be allowed in helpgate's registration there.
 */
export const SCOPES = 'openid profile email eduperson_entitlement voperson_external_affiliation';

/**
 * helpgate as an OpenID Connect relying party (openid-client 6): Authorization Code flow with
 * PKCE S256, state and nonce (kept by the caller in the server-side session, never here), id
 * tokens pinned to RS256, claims completed from userinfo as LS AAI serves them there.
 */
export class RelyingParty {
  private config: Promise<oidc.Configuration> | null = null;

  constructor(private readonly opts: RelyingPartyOptions) {}

  /** Discovery once, retried on the next request if the provider was not reachable. */
  private configuration(): Promise<oidc.Configuration> {
    this.config ??= oidc
      .discovery(
        new URL(this.opts.issuer),
        this.opts.clientId,
        { client_secret: this.opts.clientSecret, id_token_signed_response_alg: 'RS256' },
        oidc.ClientSecretBasic(this.opts.clientSecret),
        this.opts.allowInsecure ? { execute: [oidc.allowInsecureRequests] } : undefined,
      )
      .catch((err: unknown) => {
        this.config = null;
        throw new SignInError(`the identity provider ${this.opts.issuer} cannot be reached`, err);
      });
    return this.config;
  }

  async start(): Promise<Started> {
    const config = await this.configuration();
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.opts.redirectUri,
      scope: SCOPES,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, verifier, state, nonce };
  }

  /** Completes the flow from the callback URL; returns the merged id-token and userinfo claims. */
  async finish(callbackUrl: URL, expected: { verifier: string; state: string; nonce: string }): Promise<{ claims: Record<string, unknown>; idToken: string | undefined }> {
    const config = await this.configuration();
    let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: expected.verifier,
        expectedState: expected.state,
        expectedNonce: expected.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      const e = err as { error?: string; error_description?: string; message?: string };
      throw new SignInError(e.error_description ?? e.error ?? e.message ?? 'the identity provider refused the sign-in', err);
    }
    const idClaims = tokens.claims();
    if (!idClaims?.sub) throw new SignInError('the identity provider sent no subject');
    let info: Record<string, unknown> = {};
    try {
      info = (await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub)) as Record<string, unknown>;
    } catch (err) {
      throw new SignInError('the identity provider did not answer the userinfo request', err);
    }
    return { claims: { ...idClaims, ...info, sub: idClaims.sub }, idToken: tokens.id_token };
  }

  /** The provider's logout URL (RP-initiated logout), or null when it offers none. */
  async endSessionUrl(idToken: string | undefined): Promise<string | null> {
    const config = await this.configuration().catch(() => null);
    if (!config?.serverMetadata().end_session_endpoint) return null;
    return oidc.buildEndSessionUrl(config, {
      post_logout_redirect_uri: this.opts.postLogoutRedirectUri,
      ...(idToken ? { id_token_hint: idToken } : { client_id: this.opts.clientId }),
    }).href;
  }

  get issuerOrigin(): string {
    return new URL(this.opts.issuer).origin;
  }
}
