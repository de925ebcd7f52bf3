import Router from '@koa/router';
import type { Context } from 'koa';
import { koaBody } from 'koa-body';
import { errors, type Interaction, type Provider } from 'oidc-provider';
import type { Logger } from '../log/logger.ts';
import { findInstitute, searchInstitutes, type Institute } from './institutes.ts';
import type { DevAaiPages } from './pages.ts';
import type { DevUser } from './users.ts';

/** Remembers the last chosen Identity Provider, as LS AAI's discovery page does. */
export const LAST_IDP_COOKIE = 'dev_aai_last_idp';
const ONE_YEAR_MS = 365 * 24 * 3600 * 1000;

/** What each scope means to the person on the consent page. */
const SCOPE_WORDS: Readonly<Record<string, string>> = {
  openid: 'your LS AAI identifier',
  profile: 'your name',
  email: 'your e-mail address',
  eduperson_entitlement: 'your group memberships',
  voperson_external_affiliation: 'your affiliations',
  schac_home_organization: 'your home organisation',
};

/** An interaction request that cannot go on: the page says why, the status says how bad. */
class InteractionRefused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function field(ctx: Context, name: string): string {
  const body = ctx.request.body as Record<string, unknown> | undefined;
  const value = body?.[name];
  return typeof value === 'string' ? value : '';
}

/**
 * The stand-in's own interaction pages: choose an Identity Provider, sign in there, consent.
 *
 * CSRF: every step first loads the interaction through oidc-provider's `_interaction`
 * cookie, which is signed, SameSite=Lax (so a cross-site form post does not carry it) and
 * bound to this one flow; a uid in the URL that is not the cookie's is refused. That is
 * protection enough for a dev stand-in whose accounts are published test users.
 */
export function interactionRouter(opts: { provider: Provider; users: readonly DevUser[]; pages: DevAaiPages; log: Logger }): Router {
  const { provider, pages, log } = opts;
  const byUsername = new Map(opts.users.map((u) => [u.username, u]));
  const bySub = new Map(opts.users.map((u) => [u.sub, u]));
  const router = new Router({ prefix: '/interaction/:uid' });
  const form = koaBody({ json: false, text: false, multipart: false, urlencoded: true, formLimit: '16kb' });

  async function load(ctx: Context, prompt?: string): Promise<Interaction> {
    let interaction: Interaction;
    try {
      interaction = await provider.interactionDetails(ctx.req, ctx.res);
    } catch (err) {
      if (err instanceof errors.SessionNotFound) {
        throw new InteractionRefused(400, 'This sign-in has expired or is already finished. Go back to the application and sign in again.');
      }
      throw err;
    }
    if (interaction.uid !== ctx.params['uid']) throw new InteractionRefused(400, 'This sign-in page does not belong to your current sign-in.');
    if (prompt && interaction.prompt.name !== prompt) throw new InteractionRefused(400, 'This step of the sign-in is already done.');
    return interaction;
  }

  const base = (ctx: Context) => `/interaction/${encodeURIComponent(ctx.params['uid']!)}`;
  const finish = async (ctx: Context, result: Parameters<Provider['interactionResult']>[2], merge: boolean) => {
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.status = 303;
    ctx.redirect(returnTo);
  };
  const institute = (ctx: Context): Institute => {
    const found = findInstitute(ctx.params['idp']);
    if (!found) throw new InteractionRefused(404, 'There is no such institution here. Choose another one.');
    return found;
  };

  router.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!(err instanceof InteractionRefused)) throw err;
      pages.send(ctx, err.status, 'error', { title: 'Sign-in error', error: 'Cannot continue', description: err.message });
    }
  });

  router.get('/', async (ctx) => {
    const interaction = await load(ctx);
    if (interaction.prompt.name === 'login') {
      const q = typeof ctx.query['q'] === 'string' ? ctx.query['q'] : '';
      pages.send(ctx, 200, 'chooser', {
        title: 'Choose your Identity Provider',
        base: base(ctx),
        q,
        institutes: searchInstitutes(q),
        lastUsed: findInstitute(ctx.cookies.get(LAST_IDP_COOKIE)),
      });
      return;
    }
    if (interaction.prompt.name === 'consent') {
      const client = await provider.Client.find(interaction.params.client_id);
      const scopes = (interaction.params.scope ?? 'openid').split(' ').filter((s) => s in SCOPE_WORDS);
      const user = interaction.session && bySub.get(interaction.session.accountId);
      pages.send(ctx, 200, 'consent', {
        title: 'Allow access',
        base: base(ctx),
        clientName: client?.clientName ?? interaction.params.client_id,
        wants: scopes.map((s) => SCOPE_WORDS[s]!),
        user,
      });
      return;
    }
    throw new InteractionRefused(501, `The stand-in cannot handle the "${interaction.prompt.name}" step.`);
  });

  router.post('/idp', form, async (ctx) => {
    await load(ctx, 'login');
    const chosen = findInstitute(field(ctx, 'idp'));
    if (!chosen) throw new InteractionRefused(400, 'Choose an institution from the list.');
    ctx.cookies.set(LAST_IDP_COOKIE, chosen.id, { maxAge: ONE_YEAR_MS, httpOnly: true, sameSite: 'lax', path: '/' });
    ctx.status = 303;
    ctx.redirect(`${base(ctx)}/idp/${chosen.id}`);
  });

  router.get('/idp/:idp', async (ctx) => {
    await load(ctx, 'login');
    const at = institute(ctx);
    pages.send(ctx, 200, 'login', { title: `Sign in at ${at.name}`, base: base(ctx), institute: at, username: '', failed: false });
  });

  router.post('/idp/:idp', form, async (ctx) => {
    await load(ctx, 'login');
    const at = institute(ctx);
    const username = field(ctx, 'username').trim();
    const user = byUsername.get(username);
    if (!user || user.password !== field(ctx, 'password')) {
      log.info({ username, institute: at.id }, 'dev LS AAI sign-in refused');
      pages.send(ctx, 401, 'login', { title: `Sign in at ${at.name}`, base: base(ctx), institute: at, username, failed: true });
      return;
    }
    // The institute is only recorded here: the claims come from the users file, whatever was chosen.
    log.info({ username, sub: user.sub, institute: at.id }, 'dev LS AAI sign-in');
    await finish(ctx, { login: { accountId: user.sub, amr: ['pwd'] } }, false);
  });

  router.post('/consent', form, async (ctx) => {
    const interaction = await load(ctx, 'consent');
    if (field(ctx, 'decision') !== 'allow') {
      await finish(ctx, { error: 'access_denied', error_description: 'The user did not allow access.' }, false);
      return;
    }
    const { details } = interaction.prompt;
    const grant = interaction.grantId
      ? await provider.Grant.find(interaction.grantId)
      : new provider.Grant({ accountId: interaction.session!.accountId, clientId: interaction.params.client_id });
    if (!grant) throw new InteractionRefused(400, 'This sign-in has expired. Go back to the application and sign in again.');
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(details.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(' '));
    await finish(ctx, { consent: { grantId: await grant.save() } }, true);
  });

  return router;
}
