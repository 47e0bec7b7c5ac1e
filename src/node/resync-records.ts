/**
 * The survivor's side of log-guided resync: records that absent members missed an extent
 * (durable in the MissedLog before the write is acknowledged), each with an in-memory change
 * stamp, so that a record the puller reported as resolved is dropped only if no newer miss
 * arrived meanwhile (Op.Missed / Op.Resolved; src/recovery/missed-log.ts).
 */
import { decodePartitionLeafId } from '../../placement/index.ts';
import type { MissedLog, MissedRecord } from '../recovery/index.ts';
import type { RequestHeader } from '../wire/index.ts';

/** The resync records this node keeps for others. */
export class ResyncRecords {
  private readonly stamps = new Map<string, number>();
  private counter = 0;

  constructor(private readonly nodeId: number, private readonly missed: MissedLog) {}

  private key(node: number, volume: number, extent: number): string {
    return `${node}/${volume}/${extent}`;
  }

  /**
   * Records that every absent member of a write (h.absent over h.members) missed this
   * extent. Returns a promise when a record had to be made durable first (the write must
   * not be acknowledged before), else undefined.
   */
  noteAbsent(h: RequestHeader): Promise<void> | undefined {
    const absent = h.absent ?? 0;
    if (absent === 0) return undefined;
    let wait: Promise<void> | undefined;
    for (let i = 0; i < h.members.length; i++) {
      if (!(absent & (1 << i))) continue;
      const node = decodePartitionLeafId(h.members[i]).host;
      if (node === this.nodeId) continue;
      this.stamps.set(this.key(node, h.volume, h.extent), ++this.counter);
      const p = this.missed.add(node, h.volume, h.extent);
      if (p) wait = wait ? Promise.all([wait, p]).then(() => undefined) : p;
    }
    return wait;
  }

  /** Op.Missed: the records for node `node`, with stamps. */
  missedFor(node: number): MissedRecord[] {
    return this.missed.forNode(node).map(([volume, extent]) => ({ volume, extent, stamp: this.stamps.get(this.key(node, volume, extent)) ?? 0 }));
  }

  /** Op.Resolved: drops the record unless its stamp changed since `stamp` was reported. */
  resolved(node: number, volume: number, extent: number, stamp: number): void {
    const k = this.key(node, volume, extent);
    if ((this.stamps.get(k) ?? 0) !== stamp) return;
    this.stamps.delete(k);
    this.missed.remove(node, volume, extent);
  }
}
