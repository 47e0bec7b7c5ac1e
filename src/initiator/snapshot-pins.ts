/**
 * Pinning and releasing a snapshot version of a volume on every storage node (Op.Pin,
 * Op.Unpin; src/node/snapshots.ts), for the orchestrator that takes snapshots (src/catalog).
 * The caller fences the volume's writer first (a new lease generation g', announced and its
 * unsettled extents reconciled) and lets no write of generation g' or later reach a node
 * before the pin completed there: a page version superseded before the pin is not kept.
 */
import { ConnectionError, Op, Status, statusName, type ConnectionPool } from '../wire/index.ts';
import type { ViewSource } from './cluster-view.ts';

/** A node that did not do what was asked, and why. */
export interface NodeFailure {
  node: number;
  error: string;
}

/** What pinSnapshot did. */
export interface PinResult {
  /** Up nodes that pinned the version (node ids, ascending). */
  pinned: number[];
  /** Up nodes that did not (the caller should release the version and fail the snapshot). */
  failed: NodeFailure[];
  /**
   * Pinned nodes that held (or were pulling) extents of the volume they were not current
   * for, or were peering: their copies of those extents are not served as of the version.
   * When the other members were current this costs nothing; during recovery it may leave
   * extents of the snapshot unreadable (EIO), so a caller may prefer to retry later.
   */
  incomplete: Array<{ node: number; extents: number; peering: boolean }>;
}

function check(volumeId: number, version: number): void {
  if (!Number.isInteger(volumeId) || volumeId < 1 || volumeId > 0xffffffff) throw new RangeError(`volume id ${volumeId} out of range`);
  if (!Number.isSafeInteger(version) || version < 1) throw new RangeError(`snapshot version ${version} must be a positive safe integer`);
}

/** Sends `op` for (volumeId, version) to every up node of the current map at once. */
async function everyUpNode(views: ViewSource, connections: ConnectionPool, op: number, volumeId: number, version: number): Promise<Array<{ node: number; payload?: Buffer; error?: string }>> {
  const view = views.current;
  const nodes = view.map.nodes.filter((n) => n.up).map((n) => n.id).sort((a, b) => a - b);
  return Promise.all(nodes.map(async (node) => {
    try {
      const c = await connections.get(node);
      const r = await c.request({ op, flags: 0, epoch: view.epoch, volume: volumeId, extent: 0, partition: 0, firstPage: 0, pages: 0, lease: 0, version, members: [] });
      if (r.h.status === Status.Ok) return { node, payload: r.payload };
      return { node, error: statusName(r.h.status) };
    } catch (e) {
      if (!(e instanceof ConnectionError)) throw e;
      return { node, error: e.message };
    }
  }));
}

/**
 * Pins snapshot `version` of volume `volumeId` on every node the current map marks up, in
 * parallel (Op.Pin; idempotent per node). Nodes down now are not pinned: they hold no copy
 * the up members lack, and answer snapshot reads with NoSnapshot.
 * @throws RangeError on a bad volume id or version.
 */
export async function pinSnapshot(views: ViewSource, connections: ConnectionPool, volumeId: number, version: number): Promise<PinResult> {
  check(volumeId, version);
  const out: PinResult = { pinned: [], failed: [], incomplete: [] };
  for (const r of await everyUpNode(views, connections, Op.Pin, volumeId, version)) {
    if (r.error !== undefined) {
      out.failed.push({ node: r.node, error: r.error });
      continue;
    }
    out.pinned.push(r.node);
    const p = r.payload!;
    if (p.length >= 12 && (p.readUInt32LE(4) > 0 || (p.readUInt32LE(8) & 1) !== 0)) {
      out.incomplete.push({ node: r.node, extents: p.readUInt32LE(4), peering: (p.readUInt32LE(8) & 1) !== 0 });
    }
  }
  return out;
}

/**
 * Releases snapshot `version` of volume `volumeId` on every node the current map marks up,
 * in parallel (Op.Unpin; a node where it is not pinned answers Ok). A node down now keeps
 * its pins (and the space their old versions hold) until it is asked again.
 * @throws RangeError on a bad volume id or version.
 */
export async function unpinSnapshot(views: ViewSource, connections: ConnectionPool, volumeId: number, version: number): Promise<{ released: number[]; failed: NodeFailure[] }> {
  check(volumeId, version);
  const out = { released: [] as number[], failed: [] as NodeFailure[] };
  for (const r of await everyUpNode(views, connections, Op.Unpin, volumeId, version)) {
    if (r.error !== undefined) out.failed.push({ node: r.node, error: r.error });
    else out.released.push(r.node);
  }
  return out;
}
