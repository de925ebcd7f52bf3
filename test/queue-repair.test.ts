import test from 'ava';
import { CaptureSmtp } from './helpers/capture-smtp.ts';
import { startTestDatabase } from './helpers/database.ts';
import { HELPDESK, startTestHelpgate } from './helpers/helpgate.ts';
import { until } from './helpers/wait.ts';

test('mail whose queue entry was lost is queued again by the next start: ingested and acknowledged', async (t) => {
  const db = await startTestDatabase();
  t.teardown(() => db.cleanup());
  const relay = await new CaptureSmtp().listen();
  t.teardown(() => relay.close());

  // First instance: sends nothing (OUTBOX_HOLD), so its acknowledgement stays queued.
  const first = await startTestHelpgate(t, { db, relay, env: { OUTBOX_HOLD: 'true' } });
  const { Inbox, InboxQueue, Outbox, OutboxQueue } = first.hg.store.models;
  await first.send({ from: 'Ada <ada@uni.example>', to: HELPDESK, subject: 'Queued acknowledgement', text: 'First.' });
  await until(async () => (await Outbox.countDocuments({ state: 'queued', to: 'ada@uni.example' })) === 1, { what: "Ada's acknowledgement queued", timeoutMs: 30_000 });
  // Ingest stopped: Bob's mail is stored (250) and stays pending.
  await first.hg.ingest.stop();
  const bob = await first.send({ from: 'Bob <bob@uni.example>', to: HELPDESK, subject: 'Pending mail', text: 'Second.' });
  t.regex(bob.response, /^250 /);
  t.is(await Inbox.countDocuments({ state: 'pending' }), 1);
  // Both queue entries lost, as a worker dropping an entry too early or a crash between two
  // writes would leave them.
  await InboxQueue.deleteMany({});
  await OutboxQueue.deleteMany({});
  await first.stop();

  // The next instance finds both and finishes them.
  const second = await startTestHelpgate(t, { db, relay });
  const bobAck = await relay.waitFor((m) => m.envelope.rcptTo.includes('bob@uni.example'), "Bob's acknowledgement", 60_000);
  t.regex(bobAck.parsed.subject ?? '', /^\[CIE#100002\] Pending mail$/);
  const adaAck = await relay.waitFor((m) => m.envelope.rcptTo.includes('ada@uni.example'), "Ada's acknowledgement", 60_000);
  t.regex(adaAck.parsed.subject ?? '', /^\[CIE#100001\] Queued acknowledgement$/);
  t.deepEqual((await second.tickets()).map((x) => x.subject), ['Queued acknowledgement', 'Pending mail']);
});
