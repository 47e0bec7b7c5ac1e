/**
 * Asking the cluster what exists of an extent without reading it: the page versions one
 * member holds (Op.Versions: pages written or trimmed, with their versions), and the extents
 * of a volume any node holds mapped pages of (Op.Held).
 */
import { decodeVersions, type PageVersion } from '../recovery/codec.ts';
import { ConnectionError, Op, Status, statusName, type ConnectionPool } from '../wire/index.ts';
import { PlacementError, type ViewSource } from './cluster-view.ts';

/**
 * Page versions of `extent` of volume `volume` (pool `pool`, `pages` pages per extent): the
 * newest of every up member's (Op.Versions), so a member that missed writes while it was
 * down cannot hide pages the others hold. Every up member must answer; a StaleEpoch reply
 * refreshes the map and starts over.
 * @throws Error naming the last failure when the up members did not all answer (after `attempts` passes, 100 ms apart).
 */
export async function extentVersions(views: ViewSource, connections: ConnectionPool, volume: number, pool: number, extent: number, pages: number, attempts = 50): Promise<PageVersion[]> {
  let last = 'no member is up';
  for (let i = 0; i < attempts; i++) {
    const view = views.current;
    let members: number[] = [];
    try {
      members = view.members(volume, extent, pool);
    } catch (e) {
      if (!(e instanceof PlacementError)) throw e;
      last = e.message;
    }
    const up = members.filter((m) => view.isUp(view.nodeOf(m)));
    let stale = 0;
    const answers = await Promise.all(up.map(async (m): Promise<PageVersion[] | null> => {
      try {
        const c = await connections.get(view.nodeOf(m));
        const r = await c.request({ op: Op.Versions, flags: 0, epoch: view.epoch, volume, extent, partition: m, firstPage: 0, pages, lease: 0, version: 0, members });
        if (r.h.status === Status.Ok) return decodeVersions(r.payload);
        if (r.h.status === Status.StaleEpoch) stale = Math.max(stale, r.h.aux);
        last = `partition ${m}: ${statusName(r.h.status)}`;
      } catch (e) {
        if (!(e instanceof ConnectionError)) throw e;
        last = `partition ${m}: ${e.message}`;
      }
      return null;
    }));
    if (up.length > 0 && answers.every((a) => a !== null)) {
      const newest = new Map<number, PageVersion>();
      for (const list of answers) for (const v of list!) if ((newest.get(v.page)?.version ?? -1) < v.version) newest.set(v.page, v);
      return [...newest.values()].sort((a, b) => a.page - b.page);
    }
    if (stale) await views.refresh(stale);
    else await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`page versions of extent ${extent} of volume ${volume}: ${last}`);
}

/**
 * Extent indexes of volume `volume` that any up node holds mapped pages of (sorted; fully
 * trimmed extents are not listed).
 * @throws Error when an up node does not answer.
 */
export async function heldExtents(views: ViewSource, connections: ConnectionPool, volume: number): Promise<number[]> {
  const view = views.current;
  const found = new Set<number>();
  await Promise.all(view.map.nodes.filter((n) => n.up).map(async (n) => {
    const c = await connections.get(n.id);
    const r = await c.request({ op: Op.Held, flags: 0, epoch: view.epoch, volume: 0, extent: 0, partition: 0, firstPage: 0, pages: 0, lease: 0, version: 0, members: [] });
    if (r.h.status !== Status.Ok) throw new Error(`node ${n.id} did not list its extents: ${statusName(r.h.status)}`);
    const p = r.payload;
    for (let o = 0; o + 16 <= p.length; o += 16) if (p.readUInt32LE(o) === volume) found.add(p.readUInt32LE(o + 4));
  }));
  return [...found].sort((a, b) => a - b);
}
