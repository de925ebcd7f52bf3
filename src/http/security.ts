import type Koa from 'koa';
import helmet from 'koa-helmet';

/**
 * Standard security headers (koa-helmet) and a Content-Security-Policy without inline script:
 * the portal's pages work without JavaScript, and mail HTML is shown sanitised. Forms may post
 * to the portal and be redirected to the identity provider (sign-in, sign-out).
 */
export function securityHeaders(providerOrigin: string, secure: boolean): Koa.Middleware {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        frameSrc: ["'none'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'", providerOrigin],
        ...(secure ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    strictTransportSecurity: secure ? { maxAge: 31536000 } : false,
    crossOriginEmbedderPolicy: false,
    referrerPolicy: { policy: 'same-origin' },
  }) as unknown as Koa.Middleware;
}
