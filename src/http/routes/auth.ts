import Router from '@koa/router';
import { currentAup, findUser, hasConsented, isAgent, isAuthorised, recordConsent, signIn, type IdentityClaims } from '../../domain/identity/users.ts';
import { releaseHeldMail, signInLinkAddress } from '../../domain/identity/held.ts';
import { viewerOf } from '../../domain/portal/access.ts';
import { withinRateLimit } from '../../domain/rate-limit.ts';
import { clientIp, field, render, type Portal, type PortalContext, type PortalState } from '../context.ts';
import { metrics } from '../../log/metrics.ts';
import { SignInError } from '../oidc.ts';

/** A sign-in must come back from the provider within this time. */
const LOGIN_TTL_MS = 15 * 60_000;

function safeReturnTo(value: string | undefined): string {
  return value && /^\/(?!\/)[^\s\\]*$/.test(value) ? value : '/';
}

/**
 * Sign-in with LS AAI (Authorization Code + PKCE; state, nonce and verifier in the session),
 * the "Confirm your information" step with the AUP, the entitlement check, sign-out.
 */
export function authRoutes(portal: Portal): Router<PortalState> {
  const router = new Router<PortalState>();
  const { domain, config, log, rp } = portal;

  const startLogin = async (ctx: PortalContext, returnTo: string, claimToken: string | null) => {
    if (!(await withinRateLimit(domain, `signin:${clientIp(ctx)}`, 30, 5 * 60_000))) {
      return render(portal, ctx, 'error', { title: 'Too many sign-in attempts', message: 'Please wait a few minutes and try again.' }, 429);
    }
    const started = await rp.start();
    ctx.state.session.data.login = { verifier: started.verifier, state: started.state, nonce: started.nonce, returnTo, claimToken, startedAt: Date.now() };
    ctx.redirect(started.url);
  };

  router.get('/auth/login', (ctx) => startLogin(ctx, safeReturnTo(ctx.query.return as string | undefined), null));

  // The link in the answer to held mail: sign in, then that address is bound and its mail ticketed.
  router.get('/auth/claim', (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return render(portal, ctx, 'error', { title: 'This link is not valid', message: 'Use the link from our mail exactly as it is, or write to the helpdesk again.' }, 400);
    return startLogin(ctx, '/', token);
  });

  router.get('/auth/callback', async (ctx) => {
    const session = ctx.state.session;
    const login = session.data.login;
    delete session.data.login;
    const providerError = typeof ctx.query.error === 'string' ? ctx.query.error : null;
    if (providerError) {
      log.info({ error: providerError }, 'sign-in ended at the provider');
      const cancelled = providerError === 'access_denied';
      metrics.signIns.inc({ result: cancelled ? 'cancelled' : 'failed' });
      return render(
        portal,
        ctx,
        'error',
        {
          title: cancelled ? 'Sign-in cancelled' : 'Sign-in failed',
          message: cancelled
            ? 'You did not allow helpgate to use your LS AAI identity, so you are not signed in.'
            : login
              ? `The identity provider answered: ${String(ctx.query.error_description ?? providerError).slice(0, 200)}.`
              : 'The identity provider refused the sign-in.',
          retry: true,
        },
        cancelled ? 403 : 400,
      );
    }
    if (!login || Date.now() - login.startedAt > LOGIN_TTL_MS) {
      return render(portal, ctx, 'error', { title: 'Sign-in expired', message: 'This sign-in was not started here, was already used, or took too long.', retry: true }, 400);
    }
    let result: Awaited<ReturnType<typeof rp.finish>>;
    try {
      result = await rp.finish(new URL(ctx.originalUrl, config.publicUrl), login);
    } catch (err) {
      if (!(err instanceof SignInError)) throw err;
      log.warn({ err: err.message }, 'sign-in refused');
      metrics.signIns.inc({ result: 'failed' });
      return render(portal, ctx, 'error', { title: 'Sign-in failed', message: err.message, retry: true }, 400);
    }
    const claims = result.claims as unknown as IdentityClaims;
    const entitlements = ([] as string[]).concat(claims.eduperson_entitlement ?? []);
    if (config.requiredEntitlement && !entitlements.includes(config.requiredEntitlement)) {
      log.info({ sub: claims.sub }, 'sign-in without the required entitlement');
      metrics.signIns.inc({ result: 'not_authorised' });
      session.destroy();
      return render(portal, ctx, 'not-authorised', { name: claims.name ?? '', entitlement: config.requiredEntitlement }, 403);
    }
    session.renew();
    session.data.sub = claims.sub;
    session.data.idToken = result.idToken;
    session.data.pendingClaims = claims as unknown as Record<string, unknown>;
    session.data.returnTo = login.returnTo;
    session.data.claimToken = login.claimToken ?? null;
    const user = await findUser(domain, claims.sub);
    const aup = currentAup(domain);
    if (user && hasConsented(user, aup.version)) return completeSignIn(ctx);
    ctx.redirect('/consent');
  });

  /** After YES (or a consent given before): store the identity, bind, release held mail. */
  const completeSignIn = async (ctx: PortalContext) => {
    const data = ctx.state.session.data;
    const claims = data.pendingClaims as unknown as IdentityClaims;
    const { user } = await signIn(domain, claims);
    const aup = currentAup(domain);
    data.consented = aup.version;
    delete data.pendingClaims;
    const returnTo = data.returnTo ?? '/';
    delete data.returnTo;
    log.info({ sub: user._id, agent: isAgent(domain, user) }, 'signed in');
    metrics.signIns.inc({ result: 'ok' });
    // A sign-in link binds an address only on an explicit, CSRF-protected YES: a link someone
    // else forwarded must not attach their mailbox to this identity unnoticed.
    ctx.redirect(data.claimToken ? '/auth/claim/confirm' : returnTo);
  };

  router.get('/auth/claim/confirm', async (ctx) => {
    const data = ctx.state.session.data;
    if (!ctx.state.viewer || !data.claimToken) return ctx.redirect('/');
    const address = await signInLinkAddress(domain, data.claimToken);
    if (!address) {
      delete data.claimToken;
      return render(portal, ctx, 'error', { title: 'This link cannot be used', message: 'The link from our mail was already used or has expired. Write to the helpdesk again if you still need help.' }, 410);
    }
    render(portal, ctx, 'claim', { address });
  });

  router.post('/auth/claim/confirm', async (ctx) => {
    const data = ctx.state.session.data;
    const token = data.claimToken;
    delete data.claimToken;
    if (!ctx.state.viewer || !token) return ctx.redirect('/');
    if (field(ctx, 'decision') !== 'link') {
      data.flash = 'Nothing was linked.';
      return ctx.redirect('/');
    }
    const released = await releaseHeldMail(domain, ctx.state.viewer.user._id, token);
    data.flash = released.ok
      ? `${released.address} is now linked to your identity${released.released ? `; ${released.released === 1 ? 'your mail is being opened as a ticket: you will get an acknowledgement' : `your ${released.released} mails are being opened as tickets: you will get an acknowledgement for each`}` : ''}.`
      : released.reason === 'taken'
        ? 'That mail address is already linked to another identity.'
        : `The link from our mail could not be used (${released.reason}).`;
    ctx.redirect('/');
  });

  router.get('/consent', async (ctx) => {
    const claims = ctx.state.session.data.pendingClaims as unknown as IdentityClaims | undefined;
    if (!claims) return ctx.redirect('/');
    const aup = currentAup(domain);
    const user = await findUser(domain, claims.sub);
    render(portal, ctx, 'consent', {
      claims: {
        name: claims.name ?? '',
        email: claims.email ?? '',
        emailVerified: claims.email_verified === true,
        affiliation: ([] as string[]).concat(claims.voperson_external_affiliation ?? []).join(', ') || claims.schac_home_organization || '',
        sub: claims.sub,
      },
      aup,
      renewed: !!user?.consents.length,
    });
  });

  router.post('/consent', async (ctx) => {
    const data = ctx.state.session.data;
    const claims = data.pendingClaims as unknown as IdentityClaims | undefined;
    if (!claims) return ctx.redirect('/');
    if (field(ctx, 'decision') !== 'yes') {
      log.info({ sub: claims.sub }, 'consent cancelled: signed out, nothing kept');
      ctx.state.session.destroy();
      return ctx.redirect('/?cancelled=1');
    }
    const aup = currentAup(domain);
    if (field(ctx, 'version') !== aup.version) return ctx.redirect('/consent');
    await signIn(domain, claims);
    await recordConsent(domain, claims.sub, aup.version, clientIp(ctx));
    return completeSignIn(ctx);
  });

  router.post('/auth/logout', async (ctx) => {
    const idToken = ctx.state.session.data.idToken;
    ctx.state.session.destroy();
    const url = await rp.endSessionUrl(idToken);
    ctx.redirect(url ?? '/');
  });

  return router;
}

/** Loads the signed-in person for every request; pages behind it need a complete sign-in. */
export function loadViewer(portal: Portal) {
  return async (ctx: PortalContext, next: () => Promise<void>) => {
    const data = ctx.state.session.data;
    if (data.sub && data.consented && !data.pendingClaims) {
      const user = await findUser(portal.domain, data.sub);
      const aup = currentAup(portal.domain);
      if (user && isAuthorised(portal.domain, user) && hasConsented(user, aup.version) && data.consented === aup.version) {
        ctx.state.viewer = viewerOf(portal.domain, user, isAgent(portal.domain, user));
      } else if (user && data.consented !== aup.version) {
        // A new AUP version: asked again before anything else.
        data.pendingClaims = { sub: user._id, name: user.name, email: user.email ?? undefined, email_verified: user.emailVerified, eduperson_entitlement: user.entitlements, voperson_external_affiliation: user.affiliations };
      }
    }
    return next();
  };
}
