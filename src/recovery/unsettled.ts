/**
 * Extents a node applied writes to that their writer has not yet settled. A write is
 * settled once the writer knows it is on every acting member: the writer's Flush carries
 * a watermark (every version below it completed everywhere), and entries whose newest
 * version is below the watermark are dropped. After a writer change (a crashed or fenced
 * gateway), the new writer reconciles exactly the extents still listed here (Op.Suspects):
 * a write the old writer left on some members only then ends up on all of them, since the
 * newest version of each page wins (reconcile.ts). Held in memory; a restarted node
 * rebuilds it from its page versions (NodeRecovery.rebuildUnsettled).
 */
/** The unsettled extents of every volume on one node. */
export class UnsettledExtents {
  private readonly byVolume = new Map<number, Map<number, number>>();

  /** Notes a write of `version` to `extent` of `volume`. O(1). */
  note(volume: number, extent: number, version: number): void {
    let m = this.byVolume.get(volume);
    if (!m) this.byVolume.set(volume, (m = new Map()));
    const cur = m.get(extent);
    if (cur === undefined || version > cur) m.set(extent, version);
  }

  /** Drops the extents of `volume` whose newest noted version is below `watermark`. */
  settle(volume: number, watermark: number): void {
    const m = this.byVolume.get(volume);
    if (!m || watermark <= 0) return;
    for (const [e, v] of m) if (v < watermark) m.delete(e);
    if (m.size === 0) this.byVolume.delete(volume);
  }

  /** Extents of `volume` not yet settled, ascending. */
  list(volume: number): number[] {
    return [...(this.byVolume.get(volume)?.keys() ?? [])].sort((a, b) => a - b);
  }
}
