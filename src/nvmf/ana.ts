/**
 * Asymmetric Namespace Access (NVMe Base 2.0 §8.1 "Asymmetric Namespace Access Reporting"):
 * per-port ANA group states of one subsystem, the change counter, and the ANA log page
 * (Log Identifier 0Ch, §5.16.1.13).
 *
 * Cairn's model (ZBS-style): a volume is one subsystem exported by up to three gateways; each
 * gateway's port reports the volume's ANA group as optimized (the lease holder) or
 * non-optimized. A change is announced with an Asynchronous Event (Notice, ANA change).
 */

/** ANA states as the spec names them. */
export type AnaState = 'optimized' | 'non-optimized' | 'inaccessible' | 'persistent-loss' | 'change';

/** ANA state codes in the ANA log page (NVMe Base 2.0 figure "ANA Group Descriptor"). */
export const ANA_STATE_CODE: Record<AnaState, number> = {
  optimized: 0x01,
  'non-optimized': 0x02,
  inaccessible: 0x03,
  'persistent-loss': 0x04,
  change: 0x0f,
};

/** All ANA state names, for validating input. */
export const ANA_STATES = Object.keys(ANA_STATE_CODE) as AnaState[];

/** Largest ANA group id a subsystem may use (reported as ANAGRPMAX and NANAGRPID). */
export const ANA_GROUP_MAX = 128;

/** ANA group states of one subsystem, per port. */
export class AnaGroups {
  /** ANA change count: incremented on every state change (a 64-bit counter on the wire). */
  changeCount = 0;
  private readonly states = new Map<string, { state: AnaState; chgcnt: number }>();

  /** @param defaultState state of any (port, group) never set explicitly. */
  constructor(private readonly defaultState: AnaState = 'optimized') {}

  /** The state of `group` as seen through port `portId`. */
  get(portId: number, group: number): AnaState {
    return this.states.get(`${portId}/${group}`)?.state ?? this.defaultState;
  }

  /** The change count at which (port, group) last changed (0 if never). */
  changedAt(portId: number, group: number): number {
    return this.states.get(`${portId}/${group}`)?.chgcnt ?? 0;
  }

  /** Sets a state; returns true if it changed (and bumps the change count). */
  set(portId: number, group: number, state: AnaState): boolean {
    if (this.get(portId, group) === state) return false;
    this.changeCount++;
    this.states.set(`${portId}/${group}`, { state, chgcnt: this.changeCount });
    return true;
  }
}

/** One ANA group's entry for the ANA log page. */
export interface AnaGroupEntry {
  groupId: number;
  nsids: number[];
  state: AnaState;
  chgcnt: number;
}

/**
 * Builds the ANA log page: a 16-byte header (CHGCNT u64, NGRPS u16) then one descriptor per
 * group (ANAGRPID u32, NNSID u32, CHGCNT u64, ANAS u8 at byte 16, reserved to 32, then NNSID
 * u32 NSIDs). With `rgo` (LSP bit 0, Return Groups Only) the NSID lists are omitted.
 */
export function buildAnaLog(changeCount: number, groups: AnaGroupEntry[], rgo: boolean): Buffer {
  let size = 16;
  for (const g of groups) size += 32 + (rgo ? 0 : 4 * g.nsids.length);
  const b = Buffer.alloc(size);
  b.writeBigUInt64LE(BigInt(changeCount), 0);
  b.writeUInt16LE(groups.length, 8);
  let off = 16;
  for (const g of groups) {
    b.writeUInt32LE(g.groupId, off);
    b.writeUInt32LE(rgo ? 0 : g.nsids.length, off + 4);
    b.writeBigUInt64LE(BigInt(g.chgcnt), off + 8);
    b[off + 16] = ANA_STATE_CODE[g.state];
    off += 32;
    if (!rgo) for (const n of g.nsids) {
      b.writeUInt32LE(n, off);
      off += 4;
    }
  }
  return b;
}
