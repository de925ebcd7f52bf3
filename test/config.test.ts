import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loadConfig } from '../src/config/load.ts';
import { ConfigError } from '../src/errors/errors.ts';

test('defaults: the EUCAIM units, First Line as entry unit, 25 MB, CIE tags', (t) => {
  const c = loadConfig({});
  t.is(c.smtp.port, 2525);
  t.is(c.smtp.host, '127.0.0.1');
  t.is(c.helpdesk.address, 'help@helpdesk.localhost');
  t.is(c.publicUrl, 'http://localhost:3000');
  t.is(c.ticketPrefix, 'CIE');
  t.is(c.maxMessageSize, 25 * 1024 * 1024);
  t.is(c.outboundSmtpUrl, undefined);
  t.is(c.entryUnit.key, 'first-line');
  t.deepEqual(
    c.units.map((u) => u.name),
    ['First Line Support', 'Technical Support Team', 'Reference nodes', 'Catalogue', 'Federated search', 'Dashboard', 'ETL support'],
  );
  t.true(Object.isFrozen(c) && Object.isFrozen(c.units));
});

test('an invalid value is refused with the variable named', (t) => {
  const cases: [Record<string, string>, string][] = [
    [{ SMTP_PORT: 'abc' }, 'SMTP_PORT'],
    [{ SMTP_PORT: '70000' }, 'SMTP_PORT'],
    [{ HELPDESK_ADDRESS: 'not-an-address' }, 'HELPDESK_ADDRESS'],
    [{ PUBLIC_URL: 'ftp://x' }, 'PUBLIC_URL'],
    [{ TICKET_PREFIX: 'C#E' }, 'TICKET_PREFIX'],
    [{ OUTBOUND_SMTP_URL: 'http://relay' }, 'OUTBOUND_SMTP_URL'],
    [{ MAX_MESSAGE_SIZE: 'huge' }, 'MAX_MESSAGE_SIZE'],
    [{ MONGODB_URI: 'postgres://x' }, 'MONGODB_URI'],
    [{ HELPGATE_CONFIG: path.join(os.tmpdir(), 'does-not-exist.yaml') }, 'HELPGATE_CONFIG'],
  ];
  for (const [env, variable] of cases) {
    const err = t.throws(() => loadConfig(env), { instanceOf: ConfigError }, JSON.stringify(env));
    t.true(err!.message.startsWith(variable), `${err!.message} names ${variable}`);
  }
});

test('sizes and retry tables are parsed; empty variables count as unset', (t) => {
  const c = loadConfig({ MAX_MESSAGE_SIZE: '512KB', OUTBOX_BACKOFF_SECONDS: '1, 2.5,60', SMTP_PORT: '' });
  t.is(c.maxMessageSize, 512 * 1024);
  t.deepEqual(c.outbox.backoffSeconds, [1, 2.5, 60]);
  t.is(c.smtp.port, 2525);
});

test('a config file in YAML or JSON defines the units; exactly one entry unit', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'helpgate-config-'));
  const json = path.join(dir, 'units.json');
  writeFileSync(json, JSON.stringify({ units: [{ key: 'desk', name: 'Desk', address: 'desk@x.org', entry: true, members: ['A@X.org'] }] }));
  const c = loadConfig({ HELPGATE_CONFIG: json });
  t.is(c.entryUnit.key, 'desk');
  t.deepEqual(c.entryUnit.members, ['a@x.org']);

  const noEntry = path.join(dir, 'no-entry.yaml');
  writeFileSync(noEntry, 'units:\n  - key: a\n    name: A\n    address: a@x.org\n');
  t.regex(t.throws(() => loadConfig({ HELPGATE_CONFIG: noEntry }), { instanceOf: ConfigError })!.message, /HELPGATE_CONFIG.*entry/);

  const badMember = path.join(dir, 'bad-member.yaml');
  writeFileSync(badMember, 'units:\n  - key: a\n    name: A\n    address: a@x.org\n    entry: true\n    members: [nobody]\n');
  t.regex(t.throws(() => loadConfig({ HELPGATE_CONFIG: badMember }), { instanceOf: ConfigError })!.message, /units\.0\.members\.0/);

  const broken = path.join(dir, 'broken.yaml');
  writeFileSync(broken, 'units: [\n');
  t.regex(t.throws(() => loadConfig({ HELPGATE_CONFIG: broken }), { instanceOf: ConfigError })!.message, /not valid YAML/);
});
