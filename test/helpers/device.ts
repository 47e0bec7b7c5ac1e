/**
 * Helpers for tests that damage a real copy on disk: the node logs as parsed pino lines,
 * waiting until the map marks stopped nodes down, waiting until every node and the initiator
 * hold the same map with every node up, and
 * overwriting the blocks of a partition's region that hold given pages.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { decodePartitionLeafId } from '../../placement/index.ts';
import { ApiClient } from '../../src/api/index.ts';
import type { LocalCluster } from '../../src/cluster/index.ts';
import type { MapNode } from '../../src/clustermap/index.ts';
import { partitionBytes } from '../../src/node/index.ts';

const PAGE = 4096;

/** Parsed pino lines of node `id`'s log in data directory `dir` (unparsable lines skipped). */
export async function nodeLog(dir: string, id: number): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(join(dir, 'logs', `node${id}.log`), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** The epoch of each node's map, or -1 when it does not answer or marks some node down. */
export async function nodeEpochs(cluster: LocalCluster): Promise<number[]> {
  return Promise.all(cluster.config.nodes.map(async (n) => {
    try {
      const m = await new ApiClient(`http://${n.host}:${n.apiPort}`, cluster.config.token, 2000).call<{ epoch: number; nodes: MapNode[] }>('GET', '/v1/map');
      return m.nodes.every((x) => x.up) ? m.epoch : -1;
    } catch {
      return -1;
    }
  }));
}

/** Resolves true once every node and the initiator hold the same map, with every node up; false after `timeoutMs`. */
export async function waitSettled(cluster: LocalCluster, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const epochs = await nodeEpochs(cluster);
    const newest = Math.max(...epochs);
    if (cluster.view.epoch < newest) await cluster.follower!.refresh(newest).catch(() => undefined);
    const view = cluster.view;
    if (epochs.every((e) => e === view.epoch) && view.map.nodes.every((n) => n.up)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

/**
 * Resolves true once a running node's map marks every node of `ids` down (the nodes must be
 * stopped), false after `timeoutMs`. A graceful stop waits for its mark-down (at most 3 s,
 * ControlPlane.leave); one that timed out, or a SIGKILL, is marked down only after
 * membership's downAfterMs, and a restart that takes about that long races the mark-down:
 * the map may then mark the restarted node down and up again while the test reads, and its
 * reads fail over to another member.
 */
export async function waitMarkedDown(cluster: LocalCluster, ids: number[], timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  const others = cluster.config.nodes.filter((n) => !ids.includes(n.id));
  while (Date.now() < end) {
    for (const n of others) {
      try {
        const m = await new ApiClient(`http://${n.host}:${n.apiPort}`, cluster.config.token, 2000).call<{ nodes: MapNode[] }>('GET', '/v1/map');
        if (ids.every((id) => m.nodes.some((x) => x.id === id && !x.up))) return true;
      } catch {
        // that node does not answer: ask the next
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

/**
 * Overwrites with random bytes every 4 KiB block of partition `leaf`'s region of its device
 * file that equals one of `pages` (the allocator stores pages verbatim). The node must be
 * stopped. Returns the device-file offsets overwritten.
 */
export async function corruptPages(cluster: LocalCluster, leaf: number, pages: Buffer[]): Promise<number[]> {
  const { host, device, partition } = decodePartitionLeafId(leaf);
  const dev = cluster.config.nodes.find((n) => n.id === host)!.devices[device];
  const size = partitionBytes(dev.sizeBytes, dev.partitions);
  const start = partition * size;
  const want = new Set(pages.map((p) => p.toString('base64')));
  const fh = await open(resolve(cluster.dataDir, dev.path), 'r+');
  const hits: number[] = [];
  try {
    const buf = Buffer.alloc(4 * 1024 * 1024);
    for (let o = 0; o < size; o += buf.length) {
      const n = Math.min(buf.length, size - o);
      await fh.read(buf, 0, n, start + o);
      for (let b = 0; b < n; b += PAGE) {
        const blk = buf.subarray(b, b + PAGE);
        // Cheap pre-check (written pages are random, so never all zero) before hashing.
        if (blk.readBigUInt64LE(0) === 0n && blk.readBigUInt64LE(PAGE - 8) === 0n) continue;
        if (want.has(blk.toString('base64'))) hits.push(start + o + b);
      }
    }
    for (const off of hits) await fh.write(randomBytes(PAGE), 0, PAGE, off);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return hits;
}
