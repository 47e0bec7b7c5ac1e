/**
 * A private Ceph cluster for side-by-side benchmarks (Debian's Ceph 16 packages): one
 * monitor, one manager and three BlueStore OSDs on sparse files, pool `rbd` of size 3 and
 * min_size 2, and one RBD image, all on 127.0.0.1 and all under one private temp directory.
 * `start()` brings it up in about 25 s; `stop()` ends exactly the daemons it started and
 * removes the directory. The image starts empty: fill it before reading it (unwritten RBD
 * objects read as zeros without touching an OSD).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cephConf, MON_ADDRS, MON_PORTS } from './conf.ts';
import { daemonAlive, startDaemon, stopDaemons, tool } from './daemons.ts';

/** The tools the bring-up needs, from ceph-mon, ceph-osd, ceph-mgr, ceph-common and ceph-base. */
const TOOLS = ['ceph-mon', 'ceph-osd', 'ceph-mgr', 'ceph', 'rbd', 'ceph-authtool', 'monmaptool'];
/** Stop order: OSDs, then the manager, then the monitor. */
const STOP_ORDER = ['osd', 'mgr', 'mon'];

/** A running cluster. */
export interface CephCluster {
  /** The private directory holding everything (mode 0700). */
  dir: string;
  /** Path of its ceph.conf. */
  conf: string;
  /** Environment for clients (fio's rbd engine, ceph, rbd): this process's plus CEPH_CONF. */
  env: NodeJS.ProcessEnv;
  /** Pool and image names (fio: --pool, --rbdname; client name `admin`). */
  pool: string;
  image: string;
  /** Stops the daemons and removes the directory (idempotent). */
  stop(): Promise<void>;
}

/** Options of `start`. */
export interface CephStartOptions {
  /** Size of the RBD image, bytes (a multiple of 1 MiB). */
  imageBytes: number;
  /** Placement groups of the pool (default 32). */
  pgs?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** When aborted, the start stops at its next step, cleans up and throws. */
  signal?: AbortSignal;
}

/** The Ceph tools missing from PATH (empty when the packages are installed). */
export async function missingTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const t of TOOLS) {
    try {
      await tool('sh', ['-c', `command -v ${t}`], process.env, 5000);
    } catch {
      missing.push(t);
    }
  }
  return missing;
}

/** The monitor ports (3300, 6789) that something on this machine already listens on. */
export async function busyMonPorts(): Promise<number[]> {
  const busy: number[] = [];
  for (const port of MON_PORTS) {
    const free = await new Promise<boolean>((res) => {
      const s = createServer();
      s.once('error', () => res(false));
      s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
    });
    if (!free) busy.push(port);
  }
  return busy;
}

/** Polls `check` every 500 ms until it returns true. @throws Error naming `what` after `timeoutMs`, with the last error seen, or when `signal` is aborted. */
async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const t0 = Date.now();
  let last = '';
  for (;;) {
    if (signal?.aborted) throw new Error(`ceph: start aborted while waiting for ${what}`);
    try {
      if (await check()) return;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`ceph: ${what} not reached within ${timeoutMs / 1000} s${last ? ` (${last})` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Brings the cluster up: keyrings (mon., client.admin) → monmap → monitor mkfs and start →
 * quorum → manager → three OSDs (osd new, mkfs with a new key, auth add, start) → all up →
 * pool `rbd` (size 3, min_size 2, application rbd) → every PG active+clean → rbd pool init
 * → image `bench` of `o.imageBytes`. On failure it stops what it started and removes the
 * directory.
 * @throws Error when a tool is missing, a monitor port is busy, or a step fails or times out (the message names the step; daemon logs are in DIR/log until cleanup).
 */
export async function start(o: CephStartOptions): Promise<CephCluster> {
  const log = o.log ?? (() => {});
  const missing = await missingTools();
  if (missing.length) throw new Error(`ceph: missing ${missing.join(', ')} (apt-get install -y ceph-mon ceph-osd ceph-mgr ceph-common ceph-base)`);
  const busy = await busyMonPorts();
  if (busy.length) throw new Error(`ceph: monitor port(s) ${busy.join(', ')} on 127.0.0.1 already in use; the monitor needs ${MON_PORTS.join(' and ')} free`);
  const dir = mkdtempSync(join(tmpdir(), 'cairn-ceph-'));
  const conf = join(dir, 'ceph.conf');
  const env = { ...process.env, CEPH_CONF: conf };
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await stopDaemons(dir, conf, STOP_ORDER);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const sub of ['run', 'log', 'crash', 'dev', 'mon/ceph-a', 'mgr/ceph-x']) mkdirSync(join(dir, sub), { recursive: true });
    const fsid = randomUUID();
    writeFileSync(conf, cephConf({ dir, fsid }));
    const ceph = (args: string[], timeoutMs?: number): Promise<string> => tool('ceph', ['-c', conf, '--connect-timeout', '20', ...args], env, timeoutMs);
    const step = (line: string): void => {
      if (o.signal?.aborted) throw new Error('ceph: start aborted');
      log(line);
    };
    const alive = (name: string): void => {
      if (!daemonAlive(dir, name, conf)) throw new Error(`ceph: ${name} exited (see ${join(dir, 'log', `${name}.out`)})`);
    };

    step('ceph: keyrings, monmap, monitor');
    const monKeyring = join(dir, 'mon.keyring');
    const adminKeyring = join(dir, 'client.admin.keyring');
    await tool('ceph-authtool', ['--create-keyring', monKeyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'], env);
    await tool('ceph-authtool', ['--create-keyring', adminKeyring, '--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mds', 'allow *', '--cap', 'mgr', 'allow *'], env);
    await tool('ceph-authtool', [monKeyring, '--import-keyring', adminKeyring], env);
    await tool('monmaptool', ['--create', '--addv', 'a', MON_ADDRS, '--fsid', fsid, join(dir, 'monmap')], env);
    await tool('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--keyring', monKeyring], env);
    startDaemon(dir, 'mon.a', 'ceph-mon', ['-f', '-c', conf, '-i', 'a'], env);
    await waitFor('monitor quorum', async () => { alive('mon.a'); await ceph(['quorum_status'], 15000); return true; }, 60000, o.signal);

    step('ceph: manager');
    await ceph(['auth', 'get-or-create', 'mgr.x', 'mon', 'allow profile mgr', 'osd', 'allow *', 'mds', 'allow *', '-o', join(dir, 'mgr/ceph-x/keyring')]);
    startDaemon(dir, 'mgr.x', 'ceph-mgr', ['-f', '-c', conf, '-i', 'x'], env);

    for (let i = 0; i < 3; i++) {
      const uuid = randomUUID();
      const id = (await ceph(['osd', 'new', uuid])).trim();
      if (!/^\d+$/.test(id)) throw new Error(`ceph: osd new answered ${JSON.stringify(id)}`);
      step(`ceph: osd.${id} mkfs and start`);
      mkdirSync(join(dir, 'osd', `ceph-${id}`), { recursive: true });
      await tool('ceph-osd', ['-c', conf, '-i', id, '--mkfs', '--mkkey', '--no-mon-config', '--osd-uuid', uuid], env, 120000);
      await ceph(['auth', 'add', `osd.${id}`, 'osd', 'allow *', 'mon', 'allow profile osd', 'mgr', 'allow profile osd', '-i', join(dir, 'osd', `ceph-${id}`, 'keyring')]);
      startDaemon(dir, `osd.${id}`, 'ceph-osd', ['-f', '-c', conf, '-i', id], env);
    }
    await waitFor('3 OSDs up', async () => {
      for (const n of ['mon.a', 'mgr.x', 'osd.0', 'osd.1', 'osd.2']) alive(n);
      const s = JSON.parse(await ceph(['osd', 'stat', '-f', 'json'])) as { num_up_osds?: number; num_in_osds?: number };
      return s.num_up_osds === 3 && s.num_in_osds === 3;
    }, 120000, o.signal);

    step(`ceph: pool rbd (${o.pgs ?? 32} PGs, size 3, min_size 2)`);
    await ceph(['osd', 'pool', 'create', 'rbd', String(o.pgs ?? 32), String(o.pgs ?? 32), 'replicated']);
    await ceph(['osd', 'pool', 'set', 'rbd', 'size', '3']);
    await ceph(['osd', 'pool', 'set', 'rbd', 'min_size', '2']);
    await ceph(['osd', 'pool', 'application', 'enable', 'rbd', 'rbd']);
    await waitFor('every PG active+clean', async () => {
      const s = JSON.parse(await ceph(['status', '-f', 'json'])) as { pgmap?: { num_pgs?: number; pgs_by_state?: Array<{ state_name: string; count: number }> } };
      const pgs = s.pgmap?.num_pgs ?? 0;
      const clean = (s.pgmap?.pgs_by_state ?? []).filter((x) => x.state_name === 'active+clean').reduce((a, x) => a + x.count, 0);
      return pgs >= (o.pgs ?? 32) && clean === pgs;
    }, 180000, o.signal);
    await tool('rbd', ['-c', conf, 'pool', 'init', 'rbd'], env);
    await tool('rbd', ['-c', conf, 'create', 'rbd/bench', '--size', `${Math.ceil(o.imageBytes / 2 ** 20)}M`], env);
    log('ceph: up (1 mon, 1 mgr, 3 OSDs; pool rbd size 3; image rbd/bench)');
    return { dir, conf, env, pool: 'rbd', image: 'bench', stop };
  } catch (e) {
    const logs = tailLogs(join(dir, 'log'));
    await stop();
    throw new Error(`${(e as Error).message}${logs ? `\n${logs}` : ''}`);
  }
}

/** The last `n` lines of each non-empty file in `logDir`, headed by its name ('' when none). */
function tailLogs(logDir: string, n = 8): string {
  try {
    return readdirSync(logDir).sort().map((f) => {
      const lines = readFileSync(join(logDir, f), 'utf8').trimEnd().split('\n').filter(Boolean);
      return lines.length ? `--- ${f}\n${lines.slice(-n).join('\n')}` : '';
    }).filter(Boolean).join('\n');
  } catch {
    return '';
  }
}

/**
 * Stops a cluster left by an earlier `start` in `dir` (e.g. after the bench was killed):
 * ends exactly the daemons recorded in DIR/pids whose command line names DIR/ceph.conf,
 * then removes the directory.
 */
export async function stop(dir: string): Promise<void> {
  await stopDaemons(dir, join(dir, 'ceph.conf'), STOP_ORDER);
  rmSync(dir, { recursive: true, force: true });
}
