// oidc-provider ships no type declarations and @types/oidc-provider is not a dependency:
// these cover the part of its 8.x API the dev LS AAI stand-in uses, no more.

declare module 'oidc-provider' {
  import type { EventEmitter } from 'node:events';
  import type { IncomingMessage, ServerResponse } from 'node:http';
  import type { JsonWebKey } from 'node:crypto';
  import type Koa from 'koa';

  export interface ClientMetadata {
    client_id: string;
    client_secret?: string;
    client_name?: string;
    redirect_uris: string[];
    post_logout_redirect_uris?: string[];
    grant_types?: string[];
    response_types?: string[];
    token_endpoint_auth_method?: string;
    id_token_signed_response_alg?: string;
  }

  export interface Client {
    readonly clientId: string;
    readonly clientName?: string;
  }

  export interface OIDCContext {
    readonly client?: Client;
    readonly route: string;
  }

  export type KoaContextWithOIDC = Koa.ParameterizedContext & { oidc: OIDCContext };

  export interface AccountClaims {
    sub: string;
    [claim: string]: unknown;
  }

  export interface Account {
    accountId: string;
    claims(use: string, scope: string, claims: unknown, rejected: string[]): AccountClaims | Promise<AccountClaims>;
  }

  export interface PromptDetails {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  }

  export interface Interaction {
    readonly uid: string;
    readonly returnTo: string;
    readonly prompt: { readonly name: string; readonly reasons: string[]; readonly details: PromptDetails };
    readonly params: { readonly client_id: string; readonly scope?: string; readonly [param: string]: unknown };
    readonly session?: { readonly accountId: string; readonly uid: string };
    readonly grantId?: string;
  }

  export type InteractionResults =
    | { login: { accountId: string; amr?: string[]; remember?: boolean } }
    | { consent: { grantId?: string } }
    | { error: string; error_description?: string };

  export interface Grant {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface GrantConstructor {
    new (properties: { accountId: string; clientId: string }): Grant;
    find(id: string): Promise<Grant | undefined>;
  }

  export interface ClientConstructor {
    find(id: string): Promise<Client | undefined>;
  }

  export interface CookieOptions {
    httpOnly?: boolean;
    sameSite?: 'lax' | 'strict' | 'none';
    signed?: boolean;
    secure?: boolean;
  }

  export interface Configuration {
    adapter?: new (model: string) => unknown;
    clients?: ClientMetadata[];
    jwks?: { keys: JsonWebKey[] };
    cookies?: { keys?: string[]; long?: CookieOptions; short?: CookieOptions };
    claims?: Record<string, string[] | null>;
    scopes?: string[];
    responseTypes?: string[];
    conformIdTokenClaims?: boolean;
    pkce?: { methods?: ('S256' | 'plain')[]; required?: (ctx: KoaContextWithOIDC, client: Client) => boolean };
    features?: {
      devInteractions?: { enabled: boolean };
      userinfo?: { enabled: boolean };
      rpInitiatedLogout?: {
        enabled: boolean;
        logoutSource?: (ctx: KoaContextWithOIDC, form: string) => void | Promise<void>;
        postLogoutSuccessSource?: (ctx: KoaContextWithOIDC) => void | Promise<void>;
      };
    };
    interactions?: { url?: (ctx: KoaContextWithOIDC, interaction: Interaction) => string | Promise<string> };
    findAccount?: (ctx: KoaContextWithOIDC, sub: string, token?: unknown) => Promise<Account | undefined>;
    renderError?: (ctx: KoaContextWithOIDC, out: Record<string, string>, error: Error) => void | Promise<void>;
    clientBasedCORS?: (ctx: KoaContextWithOIDC, origin: string, client: Client) => boolean;
    ttl?: Record<string, number>;
  }

  export class Provider extends EventEmitter {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    readonly app: Koa;
    readonly Grant: GrantConstructor;
    readonly Client: ClientConstructor;
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
    interactionResult(req: IncomingMessage, res: ServerResponse, result: InteractionResults, options?: { mergeWithLastSubmission?: boolean }): Promise<string>;
  }

  export class OIDCProviderError extends Error {
    readonly status: number;
    readonly error: string;
    readonly error_description?: string;
  }

  export const errors: {
    readonly OIDCProviderError: typeof OIDCProviderError;
    readonly SessionNotFound: typeof OIDCProviderError;
  };

  export default Provider;
}

declare module 'oidc-provider/lib/adapters/memory_adapter.js' {
  /** The in-memory storage oidc-provider uses when no adapter is configured. */
  export default class MemoryAdapter {
    constructor(model: string);
  }
}
