import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loadConfig } from '../src/config/load.ts';
import { ConfigError } from '../src/errors/errors.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-imap-config-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const UNIT = 'units:\n  - { key: first-line, name: First Line, address: fl@helpdesk.localhost, entry: true }\n';

function file(mailboxes: string): string {
  const f = path.join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(f, `${UNIT}mailboxes:\n${mailboxes}`);
  return f;
}

test('a mailbox with its defaults, its password from the variable it names, and the IMAP settings', (t) => {
  const c = loadConfig({
    HELPGATE_CONFIG: file('  - { name: help, host: imap.example.org, user: help@example.org, passwordEnv: HELP_IMAP_PASSWORD }\n  - { name: o365, host: outlook.office365.com, tls: starttls, user: help@uni.example, accessTokenEnv: O365_TOKEN, afterStore: seen }\n'),
    HELP_IMAP_PASSWORD: 's3cret',
    O365_TOKEN: 'eyJ0eXAi',
    IMAP_LEASE_SECONDS: '30',
  });
  t.deepEqual(c.mailboxes[0], {
    name: 'help',
    host: 'imap.example.org',
    port: 993,
    tls: 'implicit',
    user: 'help@example.org',
    password: 's3cret',
    accessToken: null,
    folder: 'INBOX',
    afterStore: 'move',
    moveTo: 'Processed',
    tooLargeFolder: 'Too large',
    pollSeconds: 60,
    idle: true,
  });
  t.like(c.mailboxes[1], { port: 143, tls: 'starttls', password: null, accessToken: 'eyJ0eXAi', afterStore: 'seen' });
  t.deepEqual(c.imap, { leaseSeconds: 30, commandTimeoutSeconds: 120, retryMaxSeconds: 300, authRetrySeconds: 600, batch: 50 });
  t.deepEqual(loadConfig({}).mailboxes, []);
});

test('a mailbox whose secret variable is unset, or with no or two secrets, or a bad mode, is refused by name', (t) => {
  const unset = t.throws(() => loadConfig({ HELPGATE_CONFIG: file('  - { name: help, host: h, user: u, passwordEnv: HELP_IMAP_PASSWORD }\n') }), { instanceOf: ConfigError });
  t.regex(unset!.message, /^HELP_IMAP_PASSWORD: not set, but .*mailboxes\.0 \(help\) takes its secret from it/);
  const none = t.throws(() => loadConfig({ HELPGATE_CONFIG: file('  - { name: help, host: h, user: u }\n') }), { instanceOf: ConfigError });
  t.regex(none!.message, /mailboxes\.0: give exactly one of password, passwordEnv, accessToken, accessTokenEnv/);
  const two = t.throws(() => loadConfig({ HELPGATE_CONFIG: file('  - { name: help, host: h, user: u, password: a, accessToken: b }\n') }), { instanceOf: ConfigError });
  t.regex(two!.message, /exactly one of/);
  const mode = t.throws(() => loadConfig({ HELPGATE_CONFIG: file('  - { name: help, host: h, user: u, password: a, afterStore: archive }\n') }), { instanceOf: ConfigError });
  t.regex(mode!.message, /mailboxes\.0\.afterStore/);
  const twice = t.throws(() => loadConfig({ HELPGATE_CONFIG: file('  - { name: help, host: h, user: u, password: a }\n  - { name: help, host: h2, user: u, password: a }\n') }), { instanceOf: ConfigError });
  t.regex(twice!.message, /duplicate mailbox name help/);
});
