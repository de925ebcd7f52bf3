import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import * as client from 'openid-client';
import { devAaiUsersPath, projectRoot } from '../src/config/load.ts';
import { startDevAai, type DevAai } from '../src/dev-aai/server.ts';
import { ConfigError } from '../src/errors/errors.ts';
import { createLogger } from '../src/log/logger.ts';

// The stand-in is driven as a relying party would (openid-client) and as a browser would
// (plain fetch with a cookie jar and manual redirects): no JavaScript, just forms.

const RP = 'http://localhost:3999';
const CLIENT = {
  clientId: 'helpgate-test',
  clientSecret: 'helpgate-test-secret',
  redirectUris: [`${RP}/auth/callback`],
  postLogoutRedirectUris: [`${RP}/`],
};
const EUCAIM = 'urn:geant:lifescience-ri.eu:group:EUCAIM#aai.lifescience-ri.eu';
const SCOPE = 'openid profile email eduperson_entitlement';
const log = createLogger('silent');

let aai: DevAai;
test.before(async () => {
  aai = await startDevAai({ host: '127.0.0.1', port: 0, usersFile: devAaiUsersPath, clients: [CLIENT], log });
});
test.after.always(async () => {
  await aai?.stop();
});

/** A cookie-keeping user agent that never runs script. */
class Browser {
  private readonly jar = new Map<string, { name: string; value: string; path: string }>();

  async send(url: string | URL, form?: Record<string, string>): Promise<Response> {
    const target = new URL(url);
    const cookies = [...this.jar.values()].filter((c) => target.pathname === c.path || target.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`));
    const headers = new Headers();
    if (cookies.length) headers.set('cookie', cookies.map((c) => `${c.name}=${c.value}`).join('; '));
    const res = await fetch(target, {
      method: form ? 'POST' : 'GET',
      headers,
      redirect: 'manual',
      ...(form ? { body: new URLSearchParams(form) } : {}),
    });
    for (const line of res.headers.getSetCookie()) this.keep(line);
    return res;
  }

  /** Follows redirects while they stay on the stand-in; returns the last page, or where it left. */
  async go(url: string | URL, form?: Record<string, string>): Promise<{ res: Response; url: URL; html: string }> {
    let current = new URL(url);
    let res = await this.send(current, form);
    while (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location')!, current);
      await res.body?.cancel();
      if (next.origin !== new URL(aai.issuer).origin) return { res, url: next, html: '' };
      current = next;
      res = await this.send(current);
    }
    return { res, url: current, html: await res.text() };
  }

  private keep(line: string): void {
    const [pair, ...attributes] = line.split(';').map((s) => s.trim());
    const eq = pair!.indexOf('=');
    const name = pair!.slice(0, eq);
    const value = pair!.slice(eq + 1);
    const attr = (key: string) => attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.slice(key.length + 1);
    const cookiePath = attr('path') ?? '/';
    const expires = attr('expires');
    const gone = value === '' || attr('max-age') === '0' || (expires !== undefined && Date.parse(expires) <= Date.now());
    if (gone) this.jar.delete(`${name} ${cookiePath}`);
    else this.jar.set(`${name} ${cookiePath}`, { name, value, path: cookiePath });
  }
}

async function discover(auth?: client.ClientAuth): Promise<client.Configuration> {
  return client.discovery(new URL(aai.issuer), CLIENT.clientId, CLIENT.clientSecret, auth, { execute: [client.allowInsecureRequests] });
}

async function authorizationRequest(config: client.Configuration, extra: Record<string, string> = {}) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const checks = { pkceCodeVerifier, expectedState: client.randomState(), expectedNonce: client.randomNonce() };
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: CLIENT.redirectUris[0]!,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: checks.expectedState,
    nonce: checks.expectedNonce,
    ...extra,
  });
  return { url, checks };
}

/** Chooser → institute → sign in; returns the consent page. */
async function signIn(browser: Browser, authorizationUrl: URL, username: string, institute = 'LifeScienceHostel') {
  const chooser = await browser.go(authorizationUrl);
  const idp = new RegExp(`name="idp" value="([^"]+)">${institute}<`).exec(chooser.html)?.[1];
  if (!idp) throw new Error(`no ${institute} on the chooser: ${chooser.html}`);
  const login = await browser.go(new URL(`${chooser.url.pathname}/idp`, chooser.url), { idp });
  return browser.go(login.url, { username, password: `${username}-pass` });
}

test('a researcher signs in through chooser, login and consent; the tokens and userinfo look like LS AAI', async (t) => {
  const config = await discover(client.ClientSecretBasic(CLIENT.clientSecret));
  const { url, checks } = await authorizationRequest(config);
  const browser = new Browser();

  const chooser = await browser.go(url);
  t.is(chooser.res.status, 200);
  t.regex(chooser.url.pathname, /^\/interaction\/[\w-]+$/);
  t.true(chooser.html.includes('<h1>Choose your Identity Provider</h1>'));
  t.true(chooser.html.includes('<label for="q">Search for your institution</label>'));
  for (const name of ['University of Barcelona', 'Karolinska Institutet', 'ORCID', 'Google', 'LifeScienceHostel']) t.true(chooser.html.includes(`>${name}<`), name);
  t.false(chooser.html.includes('Last used:'), 'no institute chosen yet');
  t.false(/<script/i.test(chooser.html), 'no script on the page');

  const hostel = await browser.go(`${chooser.url}?q=HOSTEL`);
  t.true(hostel.html.includes('>LifeScienceHostel<'));
  t.false(hostel.html.includes('ORCID'));
  t.true((await browser.go(`${chooser.url}?q=charite`)).html.includes('Charité – Universitätsmedizin Berlin'), 'accents do not matter');
  t.true((await browser.go(`${chooser.url}?q=nowhere`)).html.includes('No institution matches'));

  const login = await browser.go(new URL(`${chooser.url.pathname}/idp`, chooser.url), { idp: 'lifesciencehostel' });
  t.true(login.html.includes('<h1>Sign in at LifeScienceHostel</h1>'));
  t.true(login.html.includes('<label for="username">Username</label>') && login.html.includes('<label for="password">Password</label>'));
  t.true(login.html.includes('Choose another institution'));

  const wrong = await browser.go(login.url, { username: 'researcher', password: 'not-the-password' });
  t.is(wrong.res.status, 401);
  t.true(wrong.html.includes('Wrong username or password'));
  t.true(wrong.html.includes('value="researcher"'), 'the username is kept');

  const consent = await browser.go(login.url, { username: 'researcher', password: 'researcher-pass' });
  t.true(consent.html.includes('<strong>helpgate</strong> wants to access:'), consent.html);
  for (const what of ['your name', 'your e-mail address', 'your group memberships']) t.true(consent.html.includes(what), what);

  const back = await browser.go(new URL(`${consent.url.pathname}/consent`, consent.url), { decision: 'allow' });
  t.is(`${back.url.origin}${back.url.pathname}`, CLIENT.redirectUris[0]);
  t.truthy(back.url.searchParams.get('code'));

  const tokens = await client.authorizationCodeGrant(config, back.url, checks);
  const header = JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()) as { alg: string };
  t.is(header.alg, 'RS256');
  const idToken = tokens.claims()!;
  t.regex(idToken.sub, /^[0-9a-f]{40}@lifescience-ri\.eu$/);
  t.is(idToken.iss, aai.issuer);
  for (const claim of ['email', 'name', 'eduperson_entitlement']) t.false(claim in idToken, `${claim} only from userinfo`);

  const info = await client.fetchUserInfo(config, tokens.access_token, idToken.sub);
  t.is(info.name, 'Rita Researcher');
  t.is(info.email, 'researcher@university.example');
  t.is(info.email_verified, true);
  t.true((info['eduperson_entitlement'] as string[]).includes(EUCAIM));
  t.false('voperson_external_affiliation' in info, 'not asked for');

  // The institute is remembered: forced back to the chooser, it is offered first.
  const again = await authorizationRequest(config, { prompt: 'login' });
  const chooserAgain = await browser.go(again.url);
  t.true(chooserAgain.html.includes('Last used: LifeScienceHostel'));
});

test('Deny at consent sends the user back with access_denied', async (t) => {
  const config = await discover();
  const { url, checks } = await authorizationRequest(config);
  const browser = new Browser();
  const consent = await signIn(browser, url, 'fl-agent', 'University of Oslo');
  const back = await browser.go(new URL(`${consent.url.pathname}/consent`, consent.url), { decision: 'deny' });
  t.is(`${back.url.origin}${back.url.pathname}`, CLIENT.redirectUris[0]);
  t.is(back.url.searchParams.get('error'), 'access_denied');
  t.is(back.url.searchParams.get('state'), checks.expectedState);
  const err = await t.throwsAsync(client.authorizationCodeGrant(config, back.url, checks));
  t.is((err as client.AuthorizationResponseError).error, 'access_denied');
});

test('discovery: issuer with /oidc/, PKCE S256, RS256, the LS AAI scopes, and a working end_session', async (t) => {
  t.regex(aai.issuer, /^http:\/\/127\.0\.0\.1:\d+\/oidc\/$/);
  const config = await discover();
  const meta = config.serverMetadata();
  t.is(meta.issuer, aai.issuer);
  t.deepEqual(meta.code_challenge_methods_supported, ['S256']);
  t.true(meta.id_token_signing_alg_values_supported!.includes('RS256'));
  for (const scope of ['openid', 'profile', 'email', 'eduperson_entitlement', 'voperson_external_affiliation', 'schac_home_organization']) {
    t.true(meta.scopes_supported!.includes(scope), scope);
  }
  t.true(meta.token_endpoint_auth_methods_supported!.includes('client_secret_basic'));
  t.true(meta.token_endpoint_auth_methods_supported!.includes('client_secret_post'));

  // Sign in (client_secret_post at the token endpoint), then sign out through end_session.
  const browser = new Browser();
  const { url, checks } = await authorizationRequest(config);
  const consent = await signIn(browser, url, 'tst-agent');
  const back = await browser.go(new URL(`${consent.url.pathname}/consent`, consent.url), { decision: 'allow' });
  const tokens = await client.authorizationCodeGrant(config, back.url, checks);

  const endSession = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: CLIENT.postLogoutRedirectUris[0]! });
  t.true(endSession.href.startsWith(`${aai.issuer}session/end`));
  const confirm = await browser.go(endSession);
  t.true(confirm.html.includes('<h1>Sign out of LS AAI (dev)?</h1>'));
  t.true(confirm.html.includes('Yes, sign me out'));
  t.false(/<script/i.test(confirm.html));
  const action = /<form id="op.logoutForm" method="post" action="([^"]+)"/.exec(confirm.html)![1]!;
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.html)![1]!;
  const out = await browser.go(new URL(action, confirm.url), { xsrf, logout: 'yes' });
  t.is(out.url.href, CLIENT.postLogoutRedirectUris[0]);

  // Signed out: the next authorization asks to choose an institute again.
  const next = await authorizationRequest(config);
  t.true((await browser.go(next.url)).html.includes('Choose your Identity Provider'));
});

test('PKCE is required: a request without code_challenge goes back with invalid_request', async (t) => {
  const config = await discover();
  const url = client.buildAuthorizationUrl(config, { redirect_uri: CLIENT.redirectUris[0]!, scope: SCOPE, state: 'no-pkce' });
  const back = await new Browser().go(url);
  t.is(back.url.searchParams.get('error'), 'invalid_request');
  t.regex(back.url.searchParams.get('error_description') ?? '', /PKCE/);
});

test('an invalid users file stops start-up with the file and the entry named', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-dev-aai-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'users.yaml');
  const good = readFileSync(devAaiUsersPath, 'utf8');
  writeFileSync(file, good.replace('sub: 21c72b3d4b07c3e8230e9d429b4bd222e80093a0@lifescience-ri.eu', 'sub: not-an-ls-aai-id'));
  const err = await t.throwsAsync(startDevAai({ host: '127.0.0.1', port: 0, usersFile: file, clients: [CLIENT], log }), { instanceOf: ConfigError });
  t.true(err!.message.includes(file), err!.message);
  t.true(err!.message.includes('users[3] (outsider).sub'), err!.message);

  writeFileSync(file, 'people: []\n');
  const top = await t.throwsAsync(startDevAai({ host: '127.0.0.1', port: 0, usersFile: file, clients: [CLIENT], log }), { instanceOf: ConfigError });
  t.true(top!.message.includes(file) && top!.message.includes('users'), top!.message);
});

test('with a keys file the signing key survives a restart', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-dev-aai-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const keysFile = path.join(dir, 'keys', 'dev-aai-keys.json');
  const kidOf = async (issuer: string) => {
    const jwks = (await (await fetch(`${issuer}jwks`)).json()) as { keys: { kid: string; d?: string }[] };
    t.is(jwks.keys.length, 1);
    t.false('d' in jwks.keys[0]!, 'only the public key is published');
    return jwks.keys[0]!.kid;
  };
  const first = await startDevAai({ host: '127.0.0.1', port: 0, usersFile: devAaiUsersPath, clients: [CLIENT], log, keysFile });
  const kid = await kidOf(first.issuer);
  await first.stop();
  const second = await startDevAai({ host: '127.0.0.1', port: 0, usersFile: devAaiUsersPath, clients: [CLIENT], log, keysFile });
  t.teardown(() => second.stop());
  t.is(await kidOf(second.issuer), kid);
  t.not(await kidOf(aai.issuer), kid, 'without a file every start has its own key');
});

test('`helpgate dev-aai` prints the issuer and the test users, serves discovery and stops on SIGTERM', async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-dev-aai-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, [path.join(projectRoot, 'src/cli/helpgate.mjs'), 'dev-aai'], {
    env: { PATH: process.env.PATH ?? '', HELPGATE_DATA_DIR: dataDir, DEV_AAI_PORT: '0', LOG_LEVEL: 'silent', OIDC_CLIENT_ID: 'cli-client', OIDC_CLIENT_SECRET: 'cli-secret' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within 60 s:\n${stdout}\n${stderr}`)), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('Stop with Ctrl-C.')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => reject(new Error(`exited ${code} before its banner:\n${stdout}\n${stderr}`)));
  });

  const issuer = /Issuer\s+(\S+)/.exec(stdout)?.[1] ?? '';
  t.regex(issuer, /^http:\/\/127\.0\.0\.1:\d+\/oidc\/$/);
  t.true(stdout.includes('cli-client, redirect http://localhost:3000/auth/callback'), stdout);
  for (const username of ['researcher', 'fl-agent', 'tst-agent', 'outsider', 'unverified']) t.regex(stdout, new RegExp(`\\b${username}\\s+${username}-pass\\s+\\S`), username);
  const meta = (await (await fetch(`${issuer}.well-known/openid-configuration`)).json()) as { issuer: string; end_session_endpoint: string };
  t.is(meta.issuer, issuer);
  t.is(meta.end_session_endpoint, `${issuer}session/end`);
  t.true(existsSync(path.join(dataDir, 'dev-aai-keys.json')), 'the keys are kept in the data folder');

  child.kill('SIGTERM');
  t.is(await exited, 0);
});
