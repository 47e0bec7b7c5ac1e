/**
 * Picking fixed TCP ports for servers that must keep them across restarts (a node's data,
 * gossip and management ports). A port that is free when it is picked may be bound by its node
 * only seconds later, and a node killed for a test may stay down a while; in between, another
 * process on the same machine picking ports (another local cluster, another test worker) must
 * not take it. Every picked port is therefore also reserved for RESERVE_MS by a file created
 * with O_EXCL under the OS temp directory, which every Cairn process checks before it picks.
 */
import { createServer } from 'node:net';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** How long a picked port stays reserved against other pickers on this machine, in ms. */
export const RESERVE_MS = 10 * 60_000;

/** Lowest port of the OS's ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range), default 32768. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 1024 ? low : 32768;
  } catch {
    return 32768;
  }
}

function tryListen(port: number, host: string): Promise<ReturnType<typeof createServer> | null> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(null));
    s.listen(port, host, () => resolve(s));
  });
}

function reservationDir(): string | null {
  const dir = join(tmpdir(), 'cairn-port-reservations');
  try {
    mkdirSync(dir, { recursive: true });
    return dir;
  } catch {
    return null;
  }
}

/**
 * Reserves `port` on `host` for RESERVE_MS: true when this call made the reservation, false when
 * another picker holds a live one. A reservation older than RESERVE_MS is taken over. Without a
 * writable temp directory every port counts as reservable (the bind check still applies).
 */
function reserve(dir: string | null, host: string, port: number, now: number): boolean {
  if (!dir) return true;
  const file = join(dir, `${host}_${port}`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      closeSync(openSync(file, 'wx'));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return true;
      try {
        if (now - statSync(file).mtimeMs < RESERVE_MS) return false;
        unlinkSync(file);
      } catch {
        // removed or replaced by another picker meanwhile: try once more
      }
    }
  }
  return false;
}

/** Removes reservations older than RESERVE_MS (at most once per picker call, cheap: one readdir). */
function prune(dir: string | null, now: number): void {
  if (!dir) return;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  if (names.length < 512) return;
  for (const n of names) {
    try {
      const f = join(dir, n);
      if (now - statSync(f).mtimeMs >= RESERVE_MS) unlinkSync(f);
    } catch {
      // another picker pruned it
    }
  }
}

/**
 * Finds `n` distinct free TCP ports on `host` for servers that must keep a fixed port.
 * They are picked at random below the OS's ephemeral range (between 10000 and its low end),
 * each checked by binding it and reserved against other Cairn processes on this machine for
 * RESERVE_MS (see the module comment). Ports from the ephemeral range — handed out for
 * listen(0) and as the local port of every outgoing connection — could be taken by anything
 * between this check and the node's start, so they are only the fallback when the range
 * below is exhausted.
 * @throws Error when no port at all can be bound on `host` (e.g. not an address of this machine).
 */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const low = 10000;
  const high = ephemeralLow();
  const dir = reservationDir();
  const now = Date.now();
  prune(dir, now);
  const held: Array<ReturnType<typeof createServer>> = [];
  const ports = new Set<number>();
  for (let tries = 0; ports.size < n && tries < n * 20 && high - low > n * 4; tries++) {
    const p = low + Math.floor(Math.random() * (high - low));
    if (ports.has(p)) continue;
    const s = await tryListen(p, host);
    if (!s) continue;
    held.push(s);
    if (reserve(dir, host, p, now)) ports.add(p);
  }
  while (ports.size < n) {
    const s = await tryListen(0, host);
    if (!s) throw new Error(`cannot find free ports on ${host}`);
    held.push(s);
    ports.add((s.address() as { port: number }).port);
  }
  await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  return [...ports];
}
