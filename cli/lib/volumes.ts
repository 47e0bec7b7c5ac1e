/**
 * Shared parts of the `cairn volume` and `cairn snapshot` commands: the API's volume,
 * snapshot and job shapes, their rendering, waiting on a job with progress, and exit codes.
 */
import type { Command } from '@oclif/core';
import { ApiError } from '../../src/api/client.ts';
import { clusterApi, table, type ClusterApi } from './api.ts';
import { formatSize } from './size.ts';

/** A volume as the API returns it. */
export interface ApiVolume {
  name: string;
  id: number;
  sizeBytes: number;
  pool: number;
  thin: boolean;
  state: 'ready' | 'deleting';
  createdAt: string;
  snapshots: string[];
  parent: { volume: string; snapshot: string } | null;
  usedBytes: number;
  version: number;
  allowHosts?: string[];
  attachment?: { holder: string; generation: number; at: string } | null;
}

/** A snapshot as the API returns it. */
export interface ApiSnapshot {
  volume: string;
  name: string;
  version: number;
  sizeBytes: number;
  createdAt: string;
  clones: string[];
}

/** A background job as the API returns it. */
export interface ApiJob {
  id: string;
  kind: string;
  target: string;
  state: 'running' | 'succeeded' | 'failed';
  progress: { done: number; total: number };
  error?: string;
}

/**
 * Exit statuses of the volume commands: 0 done; 1 cluster unreachable or failed; 2 bad
 * arguments (400); 3 not found (404); 4 conflict (409, 412); 5 no room (507).
 */
export function exitFor(e: unknown): number {
  if (!(e instanceof ApiError)) return 1;
  if (e.status === 400) return 2;
  if (e.status === 404) return 3;
  if (e.status === 409 || e.status === 412) return 4;
  if (e.status === 507) return 5;
  return 1;
}

/** Runs an API call for `cmd`, turning a failure into one clear line and the exit status above. */
export async function apiDo<T>(cmd: Command, flags: { 'data-dir': string; api?: string; token?: string }, fn: (api: ClusterApi) => Promise<T>): Promise<T> {
  const api = await clusterApi(flags).catch((e: Error) => cmd.error(e.message, { exit: 1 }));
  try {
    return await fn(api);
  } catch (e) {
    cmd.error((e as Error).message, { exit: exitFor(e) });
  }
}

/** The volume table of `cairn volume list`. */
export function volumeTable(vols: ApiVolume[]): string {
  return table(
    ['NAME', 'SIZE', 'USED', 'POOL', 'TYPE', 'SNAPSHOTS', 'PARENT', 'STATE'],
    vols.map((v) => [v.name, formatSize(v.sizeBytes), formatSize(v.usedBytes), String(v.pool), v.thin ? 'thin' : 'thick', String(v.snapshots.length), v.parent ? `${v.parent.volume}@${v.parent.snapshot}` : '-', v.state]),
  );
}

/** The lines of `cairn volume show`. */
export function volumeLines(v: ApiVolume): string[] {
  return [
    `volume ${v.name} (id ${v.id})`,
    `  size:      ${formatSize(v.sizeBytes)} (${v.sizeBytes} bytes), ${v.thin ? 'thin' : 'thick'}, pool ${v.pool}`,
    `  used:      ${formatSize(v.usedBytes)}`,
    `  state:     ${v.state}`,
    `  created:   ${v.createdAt}`,
    `  snapshots: ${v.snapshots.length ? v.snapshots.join(', ') : 'none'}`,
    `  parent:    ${v.parent ? `${v.parent.volume}@${v.parent.snapshot} (clone; flatten to detach)` : 'none'}`,
    `  attached:  ${v.attachment ? `${v.attachment.holder}, write lease generation ${v.attachment.generation}, since ${v.attachment.at}` : 'never'}`,
    `  NVMe hosts: ${v.allowHosts?.length ? v.allowHosts.join(', ') : 'any (the gateway\'s list)'}`,
    `  version:   ${v.version}`,
  ];
}

/** The table of `cairn snapshot list`. */
export function snapshotTable(snaps: ApiSnapshot[]): string {
  return table(['NAME', 'SIZE', 'CREATED', 'CLONES'], snaps.map((s) => [`${s.volume}@${s.name}`, formatSize(s.sizeBytes), s.createdAt, s.clones.length ? s.clones.join(',') : '-']));
}

/**
 * Polls job `job` until it ends, printing progress on stderr (one updating line on a
 * terminal, a line per 10 % otherwise).
 * @throws Error with the job's error when it failed.
 */
export async function waitJob(api: ClusterApi, job: ApiJob, what: string): Promise<ApiJob> {
  const tty = process.stderr.isTTY;
  let lastPct = -1;
  for (;;) {
    const pct = job.progress.total ? Math.floor((100 * job.progress.done) / job.progress.total) : 0;
    if (tty) process.stderr.write(`\r${what}: ${job.progress.done}/${job.progress.total} extents (${pct}%)   `);
    else if (pct >= lastPct + 10 || (job.state !== 'running' && pct !== lastPct)) {
      process.stderr.write(`${what}: ${job.progress.done}/${job.progress.total} extents (${pct}%)\n`);
      lastPct = pct;
    }
    if (job.state !== 'running') break;
    await new Promise((r) => setTimeout(r, 300));
    job = await api.call<ApiJob>('GET', `/v1/jobs/${job.id}`);
  }
  if (tty) process.stderr.write('\n');
  if (job.state === 'failed') throw new Error(`${what} failed: ${job.error ?? 'unknown error'}`);
  return job;
}

/** Splits `VOL@SNAP`. @throws Error when there is no '@'. */
export function splitSnapshot(spec: string): { volume: string; snapshot: string } {
  const i = spec.indexOf('@');
  if (i <= 0 || i === spec.length - 1) throw new Error(`'${spec}' is not VOLUME@SNAPSHOT`);
  return { volume: spec.slice(0, i), snapshot: spec.slice(i + 1) };
}
