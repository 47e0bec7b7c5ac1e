/**
 * MembershipTracker.classify (src/authority/membership.ts): a heartbeat flagged `leaving`
 * is remembered; heartbeats the node sent before it (its own clock), arriving within
 * downAfterMs, are stale — they must not mark a stopped node up again; a later one, or any
 * one once downAfterMs has passed (a clock that stepped back), means it is back.
 */
import test from 'ava';
import { MembershipTracker } from '../../src/authority/membership.ts';
import { DEFAULT_MEMBERSHIP } from '../../src/config/index.ts';

const quiet = { info: () => undefined };
const DOWN = DEFAULT_MEMBERSHIP.downAfterMs;

test('leaving, then late heartbeats from before it are stale, then a newer one is alive', (t) => {
  const m = new MembershipTracker(DEFAULT_MEMBERSHIP, 0, 1, quiet, 0);
  t.is(m.classify(2, 100, { sentAt: 1000 }), 'alive');
  t.is(m.classify(2, 100), 'alive', 'no send time: alive');
  t.is(m.classify(2, 200, { sentAt: 2000, leaving: true }), 'leaving');
  t.is(m.classify(2, 210, { sentAt: 1999 }), 'stale', 'sent before the leaving one');
  t.is(m.classify(2, 220, { sentAt: 2000 }), 'stale', 'sent at the same moment');
  t.is(m.classify(3, 230, { sentAt: 1500 }), 'alive', 'other nodes are not affected');
  t.is(m.classify(2, 240, { sentAt: 1800, leaving: true }), 'leaving', 'a repeated leaving heartbeat');
  t.is(m.classify(2, 250, { sentAt: 1999 }), 'stale', 'the newest leaving send time is kept');
  t.is(m.classify(2, 260, { sentAt: 2001 }), 'alive', 'restarted: sent after the leave');
  t.is(m.classify(2, 270, { sentAt: 1500 }), 'alive', 'once back, the mark is forgotten');
});

test('a node whose clock stepped back is heard again after downAfterMs', (t) => {
  const m = new MembershipTracker(DEFAULT_MEMBERSHIP, 0, 1, quiet, 0);
  t.is(m.classify(4, 1000, { sentAt: 50000, leaving: true }), 'leaving');
  t.is(m.classify(4, 1000 + DOWN - 1, { sentAt: 10000 }), 'stale', 'within downAfterMs of the leave');
  t.is(m.classify(4, 1000 + DOWN, { sentAt: 10000 }), 'alive', 'after it: counted, whatever its clock says');
});
