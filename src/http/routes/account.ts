import Router from '@koa/router';
import { confirmAddress, requestAddressConfirmation, unbindAddress } from '../../domain/identity/addresses.ts';
import { field, render, type Portal, type PortalState } from '../context.ts';

/** The LS AAI identity, bound mail addresses (add by confirmation link, remove), consents. */
export function accountRoutes(portal: Portal): Router<PortalState> {
  const router = new Router<PortalState>();
  const { domain } = portal;

  router.get('/account', (ctx) => render(portal, ctx, 'account', { user: ctx.state.viewer!.user, errors: {}, address: '' }));

  router.post('/account/addresses', async (ctx) => {
    const user = ctx.state.viewer!.user;
    const address = field(ctx, 'address').trim().toLowerCase();
    if (!/^[^\s@<>()",;:]+@[^\s@<>()",;:]+\.[^\s@<>()",;:]+$/.test(address) || address.length > 254) {
      return render(portal, ctx, 'account', { user, errors: { address: 'Enter a mail address such as name@example.org.' }, address }, 422);
    }
    const result = await requestAddressConfirmation(domain, user._id, address);
    if (!result.sent) {
      const message =
        result.reason === 'already-yours' ? 'This address is already linked to you.' : result.reason === 'taken' ? 'This address is linked to another identity.' : 'Too many confirmation mails: please wait an hour.';
      return render(portal, ctx, 'account', { user, errors: { address: message }, address }, result.reason === 'rate-limited' ? 429 : 422);
    }
    ctx.state.session.data.flash = `We sent a confirmation link to ${address}. The address is linked once you open it.`;
    ctx.redirect('/account');
  });

  router.post('/account/addresses/remove', async (ctx) => {
    const user = ctx.state.viewer!.user;
    const address = field(ctx, 'address').trim().toLowerCase();
    const result = await unbindAddress(domain, user._id, address);
    if (result === 'last') {
      return render(portal, ctx, 'account', { user, errors: {}, address: '', flash: { kind: 'error', text: `${address} is your only linked address: link another one before you remove it.` } }, 409);
    }
    ctx.state.session.data.flash = result === 'removed' ? 'The address is no longer linked to you.' : 'That address was not linked to you.';
    ctx.redirect('/account');
  });

  router.get('/account/addresses/confirm', async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    const result = await confirmAddress(domain, ctx.state.viewer!.user._id, token);
    if (result.ok) {
      ctx.state.session.data.flash = `${result.address} is now linked to your identity.`;
      return ctx.redirect('/account');
    }
    const messages: Record<string, string> = {
      unknown: 'This confirmation link is not valid.',
      used: 'This confirmation link was already used.',
      expired: 'This confirmation link has expired: ask for a new one below.',
      taken: 'This address was linked to another identity meanwhile.',
      'other-user': 'This confirmation link was sent for another person’s request.',
    };
    render(portal, ctx, 'error', { title: 'Address not confirmed', message: messages[result.reason] ?? 'The link could not be used.' }, result.reason === 'unknown' ? 404 : 410);
  });

  return router;
}
