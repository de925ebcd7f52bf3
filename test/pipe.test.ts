import test from 'ava';
import { freePort } from '../src/db/embedded.ts';
import type { Article } from '../src/db/models/article.ts';
import type { InboxItem } from '../src/db/models/inbox.ts';
import { cliDatabaseEnv, runCli } from './helpers/cli.ts';
import { databasePerTest } from './helpers/database-per-test.ts';
import { HELPDESK, startTestHelpgate } from './helpers/helpgate.ts';
import { fixture, quiet } from './helpers/mail-flow.ts';
import { until } from './helpers/wait.ts';

const database = databasePerTest(test);
const SENDER = 'pia@uni-pipe.example';

test('as a Postfix alias runs it ("|helpgate ingest"): the envelope comes from SENDER and ORIGINAL_RECIPIENT, twice is one article, and `helpgate status` shows the pipe', async (t) => {
  const h = await startTestHelpgate(t, { db: await database() });
  const env = { ...cliDatabaseEnv(h.db), SENDER, RECIPIENT: 'help+x@helpdesk.localhost', ORIGINAL_RECIPIENT: HELPDESK };
  const mail = fixture('new-request-via-pipe.eml');
  for (let i = 0; i < 2; i++) {
    const run = await runCli(['ingest'], { stdin: mail, env });
    t.is(run.code, 0, run.stderr);
    t.regex(run.stdout, /^stored as [0-9a-f]{24}\n$/);
  }
  const { Inbox, Article, Outbox } = h.hg.store.models;
  h.hg.ingest.kick();
  await until(async () => (await Inbox.countDocuments({ source: 'pipe', state: 'done' })) === 2, { what: 'both copies processed', timeoutMs: 60_000 });
  await quiet(h);
  const items = await Inbox.find({ source: 'pipe' }).lean<InboxItem[]>();
  t.deepEqual(
    items.map((i) => [i.envelope.mailFrom, i.envelope.rcptTo]),
    [
      [SENDER, [HELPDESK]],
      [SENDER, [HELPDESK]],
    ],
  );
  const articles = await Article.find({}).lean<Article[]>();
  t.is(articles.length, 1, 'one article for the mail delivered twice');
  t.is(await Outbox.countDocuments({ kind: 'ack' }), 1, 'one acknowledgement');

  const status = await runCli(['status'], { env: cliDatabaseEnv(h.db) });
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, /^smtp:\S+:\d+\n\s+state\s+listening/m);
  t.regex(status.stdout, /^pipe\n\s+state\s+last run stored its message.*\n(.*\n)?\s+last message\s+\d{4}-\d\d-\d\dT/m);
  const json = JSON.parse((await runCli(['status', '--json'], { env: cliDatabaseEnv(h.db) })).stdout) as { intakes: { intake: string; lastMessageAt: string | null }[] };
  t.truthy(json.intakes.find((i) => i.intake === 'pipe')?.lastMessageAt);
});

test("as Postfix's pipe(8) transport runs it (argv=… -f ${sender} -- ${recipient}): 75 while the database is down, so the MTA keeps the mail; 0 once it is back", async (t) => {
  const args = ['ingest', '-f', SENDER, '--', 'Help@Helpdesk.localhost'];
  const mail = fixture('new-request-via-pipe.eml');
  const down = await runCli(args, { stdin: mail, env: { MONGODB_URI: `mongodb://127.0.0.1:${await freePort()}/helpgate`, MONGODB_TIMEOUT_MS: '1000' } });
  t.is(down.code, 75, 'EX_TEMPFAIL: Postfix defers the mail');
  t.regex(down.stderr, /^helpgate: cannot connect to the database/);
  const db = await database();
  const up = await runCli(args, { stdin: mail, env: cliDatabaseEnv(db) });
  t.is(up.code, 0, up.stderr);
  const listed = JSON.parse((await runCli(['inbox', '--json'], { env: cliDatabaseEnv(db) })).stdout) as InboxItem[];
  t.deepEqual(
    listed.map((i) => [i.source, i.envelope.mailFrom, i.envelope.rcptTo]),
    [['pipe', SENDER, ['help@helpdesk.localhost']]],
  );
});
