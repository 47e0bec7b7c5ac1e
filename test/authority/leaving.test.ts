/**
 * MembershipTracker.classify (src/authority/membership.ts): a heartbeat flagged `leaving`
 * is remembered with its send time; heartbeats the node sent before it, arriving later,
 * are stale (they must not mark a stopped node up again); a later one means it is back.
 */
import test from 'ava';
import { MembershipTracker } from '../../src/authority/membership.ts';
import { DEFAULT_MEMBERSHIP } from '../../src/config/index.ts';

const quiet = { info: () => undefined };

test('leaving, then late heartbeats from before it are stale, then a newer one is alive', (t) => {
  const m = new MembershipTracker(DEFAULT_MEMBERSHIP, 0, 1, quiet, 0);
  t.is(m.classify(2, { sentAt: 1000 }), 'alive');
  t.is(m.classify(2), 'alive', 'no send time: alive');
  t.is(m.classify(2, { sentAt: 2000, leaving: true }), 'leaving');
  t.is(m.classify(2, { sentAt: 1999 }), 'stale', 'sent before the leaving one');
  t.is(m.classify(2, { sentAt: 2000 }), 'stale', 'sent at the same moment');
  t.is(m.classify(3, { sentAt: 1500 }), 'alive', 'other nodes are not affected');
  t.is(m.classify(2, { sentAt: 1800, leaving: true }), 'leaving', 'a repeated leaving heartbeat');
  t.is(m.classify(2, { sentAt: 1999 }), 'stale', 'the newest leaving send time is kept');
  t.is(m.classify(2, { sentAt: 2001 }), 'alive', 'restarted: sent after the leave');
  t.is(m.classify(2, { sentAt: 1500 }), 'alive', 'once back, the mark is forgotten');
});
