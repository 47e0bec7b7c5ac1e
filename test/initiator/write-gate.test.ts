import test from 'ava';
import { WriteGate } from '../../src/initiator/index.ts';

test('shared holders run together; exclusive waits for them and blocks later arrivals', async (t) => {
  const g = new WriteGate();
  const events: string[] = [];
  t.is(g.enterShared(), undefined, 'uncontended shared entry does not wait');
  t.is(g.enterShared(), undefined);
  const ex = g.enterExclusive().then(() => events.push('exclusive in'));
  const late = g.enterShared();
  t.truthy(late, 'a shared arrival after a waiting exclusive waits');
  void late!.then(() => events.push('late shared in'));
  await new Promise((r) => setImmediate(r));
  t.deepEqual(events, []);
  g.leaveShared();
  g.leaveShared();
  await ex;
  await new Promise((r) => setImmediate(r));
  t.deepEqual(events, ['exclusive in']);
  g.leaveExclusive();
  await late;
  t.deepEqual(events, ['exclusive in', 'late shared in']);
  g.leaveShared();
  await g.enterExclusive();
  g.leaveExclusive();
});
