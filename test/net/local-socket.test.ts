/**
 * Local sockets (src/net/local-socket.ts): which addresses count as loopback, the abstract
 * socket name a node serves for each, and the CAIRN_LOCAL_SOCKETS switch. A node really
 * serving its local socket is tested in test/node/data-path.test.ts; the TCP fallback to a
 * server without one in test/net/loop-poll.test.ts.
 */
import test from 'ava';
import { isLoopback, localSocketPath, localSocketsEnabled } from '../../src/net/index.ts';

test('loopback addresses and their local socket names', (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) t.true(isLoopback(h), h);
  for (const h of ['10.0.0.1', '0.0.0.0', '::', 'example.com', '128.0.0.1']) t.false(isLoopback(h), h);
  t.is(localSocketPath('127.0.0.1', 7001), '\0cairn-data/127.0.0.1:7001');
  t.is(localSocketPath('[::1]', 7001), '\0cairn-data/::1:7001');
  t.is(localSocketPath('10.0.0.1', 7001), null);
  t.false(localSocketsEnabled({ CAIRN_LOCAL_SOCKETS: '0' }));
  t.true(localSocketsEnabled({}));
});
