/**
 * The three systems of `npm run bench -- compare`, each started on its own (one at a time,
 * so an idle one steals no CPU) and registered for cleanup before it is up, so that a
 * SIGINT during a start still stops it and removes its directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../../src/cluster/index.ts';
import { start as startCeph } from '../ceph/cluster.ts';
import { startCairn } from '../lib/cairn-up.ts';
import { nodePids } from '../lib/proc-cpu.ts';
import { cleanupSignal, onCleanup } from '../lib/cleanup.ts';
import { startNbdkit } from '../lib/nbdkit.ts';
import { nbdTarget, rbdTarget, type FioTarget } from './jobs.ts';

/** A system that is up: how fio reaches it, and how to stop it (idempotent; also run by cleanup). */
export interface Running {
  target: FioTarget;
  stop(): Promise<void>;
  /** Cairn only: its processes, the `cairn up` gateway first, then the nodes (for CPU per request). */
  pids?: () => number[];
}

/** What each system is, for the output's setup. */
export const DESCRIPTIONS = {
  nbdkit: 'nbdkit memory over TCP loopback (127.0.0.1), fio nbd engine: the NBD protocol ceiling, no replication',
  ceph: 'Ceph 16 RBD: 1 mon, 1 mgr, 3 BlueStore OSDs on sparse files, pool size 3 min_size 2, 32 PGs, rbd cache off, fio rbd engine (librbd)',
  cairn: 'cairn up: 3 node processes, 3 replicas (min_size 2), thin volume vol0, NBD over TCP loopback, fio nbd engine',
} as const;

/**
 * Registers cleanup for a start in progress: the undo waits for `up` and stops what it
 * yields (nothing when the start failed), then runs `after` (e.g. removing a directory).
 */
function guard<T>(what: string, up: Promise<T>, stop: (t: T) => Promise<void>, after: () => void = () => {}): () => Promise<void> {
  return onCleanup(what, async () => {
    try {
      const t = await up.then((v) => v, () => undefined);
      if (t !== undefined) await stop(t);
    } finally {
      after();
    }
  });
}

/** Waits for `up`; when it fails, runs `undo` (which cleans up) and rethrows. */
async function settle<T>(up: Promise<T>, undo: () => Promise<void>): Promise<T> {
  try {
    return await up;
  } catch (e) {
    await undo();
    throw e;
  }
}

/**
 * Starts `nbdkit memory` of `sizeBytes` on a free loopback port.
 * @throws Error when nbdkit is missing or does not answer.
 */
export async function upNbdkit(sizeBytes: number): Promise<Running> {
  const [port] = await freePorts(1);
  const up = startNbdkit(port, sizeBytes);
  const stop = guard('nbdkit', up, (s) => s());
  await settle(up, stop);
  return { target: nbdTarget(`nbd://127.0.0.1:${port}`), stop };
}

/**
 * Starts the private Ceph cluster (bench/ceph/cluster.ts) with an image of `sizeBytes`;
 * `log` receives its progress.
 * @throws Error when a bring-up step fails (the message names it and carries the daemons' last log lines).
 */
export async function upCeph(sizeBytes: number, log: (s: string) => void): Promise<Running> {
  const up = startCeph({ imageBytes: sizeBytes, log, signal: cleanupSignal });
  const stop = guard('ceph', up, (c) => c.stop());
  const c = await settle(up, stop);
  return { target: rbdTarget(c.pool, c.image, c.env), stop };
}

/**
 * Starts `cairn up` (3 nodes, 3 replicas) in a new temp data directory with a volume of
 * `sizeBytes`, exported over NBD on a free loopback port.
 * @throws Error when `cairn up` exits before exporting.
 */
export async function upCairn(sizeBytes: number): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cairn-compare-'));
  const [port] = await freePorts(1);
  const up = startCairn(dataDir, port, ['--volume-size', String(sizeBytes)]);
  const stop = guard('cairn up', up, (s) => s(), () => rmSync(dataDir, { recursive: true, force: true }));
  const gateway = await settle(up, stop);
  return { target: nbdTarget(`nbd://127.0.0.1:${port}/vol0`), stop, pids: () => [gateway.pid, ...nodePids(dataDir)] };
}
