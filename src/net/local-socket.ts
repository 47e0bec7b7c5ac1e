/**
 * Same-host data-path connections over Unix domain sockets.
 *
 * A storage node whose data-path address is a loopback address (127.0.0.0/8, ::1,
 * localhost) also listens on a Linux abstract Unix socket named after that address, and a
 * client connecting to such an address tries that socket first. The bytes and the protocol
 * are the same; what goes away is the loopback device's TCP/IP processing (segments,
 * ACKs, the TCP state machine). A 4 KiB request/reply stream between two Node processes on
 * this project's 2-core VM moved 350–475k messages/s over TCP loopback and 605–614k over a
 * Unix socket, at QD 32; through `cairn up`, 1 MiB writes at QD8 went from 223–229 to
 * 266–271 MB/s.
 *
 * Abstract names (a leading NUL) live in the network namespace, exactly like the loopback
 * address they are named after, and vanish with the process: no file to clean up, no
 * stale socket after kill -9. Who may connect is unchanged (anyone in the namespace, as
 * with a loopback port); the Hello's cluster token is checked as on TCP.
 *
 * `CAIRN_LOCAL_SOCKETS=0` in a process's environment turns both sides off (TCP only).
 */

/** `host` without IPv6 brackets, lower case. */
function bareHost(host: string): string {
  return host.replace(/^\[|\]$/g, '').toLowerCase();
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  const h = bareHost(host);
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

/** Whether this process uses local sockets: Linux, and CAIRN_LOCAL_SOCKETS is not 0. */
export function localSocketsEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return process.platform === 'linux' && env.CAIRN_LOCAL_SOCKETS !== '0';
}

/**
 * The abstract Unix socket a node listening on `host`:`port` also serves, or null when the
 * address is not a loopback one (or local sockets are off): `\0cairn-data/HOST:PORT`.
 */
export function localSocketPath(host: string, port: number): string | null {
  if (!localSocketsEnabled() || !isLoopback(host)) return null;
  return `\0cairn-data/${bareHost(host)}:${port}`;
}
