import test from 'ava';
import { insertManyOnce } from '../src/db/coordination/index.ts';
import { openStore } from '../src/db/store.ts';
import { startTestDatabase } from './helpers/database.ts';

// Its own database server: the second test stops it.
test.serial('insertManyOnce stores new documents once, skips those stored before, and fails when the server is gone', async (t) => {
  const db = await startTestDatabase({ own: true });
  t.teardown(() => db.cleanup());
  const store = await openStore(db.uri, { dbName: db.dbName, timeoutMs: 2000 });
  t.teardown(() => store.close());
  const { InboxQueue } = store.models;
  const due = new Date();
  const doc = (n: number) => ({ _id: `00000000000000000000000${n}`, due, since: due });
  t.deepEqual(await insertManyOnce(InboxQueue, [doc(1), doc(2)]), [doc(1)._id, doc(2)._id]);
  t.deepEqual(await insertManyOnce(InboxQueue, [doc(2), doc(3), doc(1)]), [doc(3)._id]);
  t.is(await InboxQueue.countDocuments({}), 3);

  // With the server gone, the insert fails: it is never taken for "stored before".
  await db.stop();
  const error = await t.throwsAsync(insertManyOnce(InboxQueue, [doc(4), doc(5)]));
  t.notRegex(error!.message, /E11000/);
  await db.restart();
  t.deepEqual(await insertManyOnce(InboxQueue, [doc(4), doc(5)]), [doc(4)._id, doc(5)._id]);
});
