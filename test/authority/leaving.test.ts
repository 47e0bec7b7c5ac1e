/**
 * MembershipTracker.heartbeat (src/authority/membership.ts): a heartbeat flagged `leaving`
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
  t.is(m.heartbeat(2, 100, undefined, { sentAt: 1000 }), 'alive');
  t.is(m.heartbeat(2, 100), 'alive', 'no send time: alive');
  t.is(m.heartbeat(2, 200, undefined, { sentAt: 2000, leaving: true }), 'leaving');
  t.is(m.heartbeat(2, 210, undefined, { sentAt: 1999 }), 'stale', 'sent before the leaving one');
  t.is(m.heartbeat(2, 220, undefined, { sentAt: 2000 }), 'stale', 'sent at the same moment');
  t.is(m.heartbeat(3, 230, undefined, { sentAt: 1500 }), 'alive', 'other nodes are not affected');
  t.is(m.heartbeat(2, 240, undefined, { sentAt: 1800, leaving: true }), 'leaving', 'a repeated leaving heartbeat');
  t.is(m.heartbeat(2, 250, undefined, { sentAt: 1999 }), 'stale', 'the newest leaving send time is kept');
  t.is(m.heartbeat(2, 260, undefined, { sentAt: 2001 }), 'alive', 'restarted: sent after the leave');
  t.is(m.heartbeat(2, 270, undefined, { sentAt: 1500 }), 'alive', 'once back, the mark is forgotten');
});

test('a node whose clock stepped back is heard again after downAfterMs', (t) => {
  const m = new MembershipTracker(DEFAULT_MEMBERSHIP, 0, 1, quiet, 0);
  t.is(m.heartbeat(4, 1000, undefined, { sentAt: 50000, leaving: true }), 'leaving');
  t.is(m.heartbeat(4, 1000 + DOWN - 1, undefined, { sentAt: 10000 }), 'stale', 'within downAfterMs of the leave');
  t.is(m.heartbeat(4, 1000 + DOWN, undefined, { sentAt: 10000 }), 'alive', 'after it: counted, whatever its clock says');
});
