/**
 * The discovery log page (Log Identifier 70h, NVMe-oF 1.1 §5.3 "Discovery Log Page"): a
 * 1024-byte header (GENCTR u64, NUMREC u64, RECFMT u16) followed by 1024-byte entries, one per
 * (subsystem, port) the asking host may connect to.
 */
import { isIPv6 } from 'node:net';
import { putAscii, putNqn } from './ids.ts';

/** A port as advertised to hosts. */
export interface PortInfo {
  /** PORTID. */
  portId: number;
  /** TRADDR hosts should use. */
  traddr: string;
  /** TRSVCID: the TCP port. */
  trsvcid: number;
}

/** Subsystem types in a discovery entry (SUBTYPE). */
export const SubType = { REFERRAL: 1, NVM: 2, CURRENT_DISCOVERY: 3 } as const;

/** One discovery log entry. */
export interface DiscoveryEntry extends PortInfo {
  subnqn: string;
  subtype: number;
}

/** Transport type TCP (TRTYPE, NVMe-oF 1.1 figure "Transport Type"). */
export const TRTYPE_TCP = 3;
/** Admin max submission queue size advertised (ASQSZ; at least 32). */
export const ASQSZ = 32;

/** Size of the discovery log page for `n` entries, bytes. */
export function discoveryLogSize(n: number): number {
  return 1024 * (n + 1);
}

/** Builds the discovery log page with generation counter `genctr`. */
export function buildDiscoveryLog(genctr: number, entries: DiscoveryEntry[]): Buffer {
  const b = Buffer.alloc(discoveryLogSize(entries.length));
  b.writeBigUInt64LE(BigInt(genctr), 0);
  b.writeBigUInt64LE(BigInt(entries.length), 8);
  b.writeUInt16LE(0, 16); // RECFMT
  entries.forEach((e, i) => {
    const o = 1024 * (i + 1);
    b[o] = TRTYPE_TCP;
    b[o + 1] = isIPv6(e.traddr) ? 2 : 1; // ADRFAM: IPv4 / IPv6
    b[o + 2] = e.subtype;
    // TREQ (o + 3) = 0: secure channel not specified (hosts read "required"/"not required" as
    // "TLS available" and would ask for it); SQ flow control cannot be disabled.
    b.writeUInt16LE(e.portId, o + 4);
    b.writeUInt16LE(0xffff, o + 6); // CNTLID: dynamic controller model
    b.writeUInt16LE(ASQSZ, o + 8);
    b.writeUInt16LE(0, o + 10); // EFLAGS
    putAscii(b, o + 32, 32, String(e.trsvcid));
    putNqn(b, o + 256, 256, e.subnqn);
    putAscii(b, o + 512, 256, e.traddr);
    // TSAS (o + 768): SECTYPE 0 = no security.
  });
  return b;
}
