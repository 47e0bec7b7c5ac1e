/**
 * How the initiator's Volume turns data-path statuses into BlockDevice errors, which
 * statuses end an I/O at once, and the error of an extent below min_size (naming the
 * extent and its missing members).
 */
import { BlockDeviceError, type BlockErrorCode } from '../volume/index.ts';
import { Status, statusName } from '../wire/index.ts';
import { PlacementError, type ClusterView } from './cluster-view.ts';

/** The BlockDevice error for a reply status: ENOSPC, EFENCED, ESTALE, EINVAL, EBADCRC, ESHUTDOWN or EIO. */
export function errorFor(status: number, what: string): BlockDeviceError {
  const code: BlockErrorCode =
    status === Status.NoSpace ? 'ENOSPC'
    : status === Status.Fenced ? 'EFENCED'
    : status === Status.StaleEpoch ? 'ESTALE'
    : status === Status.Invalid ? 'EINVAL'
    : status === Status.BadChecksum ? 'EBADCRC'
    : status === Status.ShuttingDown ? 'ESHUTDOWN'
    : 'EIO';
  return new BlockDeviceError(code, `${what}: ${statusName(status)}`);
}

/** Statuses that end a write at once (the same answer would come from every member). */
export const WRITE_FATAL: ReadonlySet<number> = new Set<number>([Status.NoSpace, Status.Fenced, Status.Invalid, Status.Unauthorized]);
/** Statuses that end a read at once. */
export const READ_FATAL: ReadonlySet<number> = new Set<number>([Status.Fenced, Status.Invalid, Status.Unauthorized]);

/** How often one request is retried after StaleEpoch replies before the error reaches the caller. */
export const STALE_RETRIES = 5;

/**
 * EIO for `what` on `extent` of `volume`, which had fewer than its pool's min_size members
 * up for `waitedMs`: names how many are up and which are missing (down partitions, and
 * members that cannot be placed because too few nodes are in). `placed` may be [] when
 * placement failed; the members placement could still find are then used.
 */
export function belowMinSize(view: ClusterView, volume: { id: number; name: string; pool: number }, extent: number, placed: number[], what: string, waitedMs: number): BlockDeviceError {
  const pool = view.pool(volume.pool);
  let members = placed;
  if (members.length === 0) {
    try {
      members = view.members(volume.id, extent, volume.pool);
    } catch (e) {
      if (e instanceof PlacementError) members = e.placeable;
    }
  }
  const missing = members.filter((m) => !view.isUp(view.nodeOf(m))).map((m) => `partition ${m} (node ${view.nodeOf(m)}, down)`);
  const upCount = members.length - missing.length;
  const short = pool.replicas - members.length;
  const out = view.map.nodes.filter((n) => !n.in).map((n) => n.id);
  if (short > 0) missing.push(`${short} member${short > 1 ? 's' : ''} not placeable (too few nodes in${out.length ? `; out: node${out.length > 1 ? 's' : ''} ${out.join(', ')}` : ''})`);
  return new BlockDeviceError('EIO', `${what} of volume ${volume.name}: extent ${extent} has ${upCount} of ${pool.replicas} members up, below min_size ${pool.minSize}, for ${waitedMs} ms; missing: ${missing.join(', ')}`);
}
