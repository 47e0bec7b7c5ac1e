/**
 * Identify data structures (4096 bytes each): Identify Controller (CNS 01h, NVMe Base 2.0
 * figure 275 plus NVMe-oF 1.1 §4.1 fabrics fields at 1792), Identify Namespace (CNS 00h, NVM
 * Command Set 1.0 figure 97), Active Namespace ID list (CNS 02h), Namespace Identification
 * Descriptor list (CNS 03h), and the NVM command set specific structures (CNS 05h/06h).
 */
import { ANA_GROUP_MAX } from './ana.ts';
import { AERL, ERROR_LOG_ENTRIES, MAX_ICD, MDTS, MQES, NVME_VERSION, type Controller } from './controller.ts';
import { putAscii, putNqn } from './ids.ts';
import { LBA_SIZE, MAX_NAMESPACES, type Namespace } from './subsystem.ts';

/** Firmware revision reported (FR, 8 ASCII characters). */
export const FIRMWARE_REVISION = '0.1.0';

/** Identify Controller for an I/O or discovery controller. */
export function identifyController(ctrl: Controller): Buffer {
  const b = Buffer.alloc(4096);
  const sub = ctrl.subsystem;
  const io = !ctrl.discovery;
  putAscii(b, 4, 20, sub.serial); // SN
  putAscii(b, 24, 40, sub.model); // MN
  putAscii(b, 64, 8, FIRMWARE_REVISION); // FR
  b[72] = 6; // RAB
  b[76] = io ? 0x0b : 0; // CMIC: multiple ports, multiple controllers, ANA reporting
  b[77] = MDTS;
  b.writeUInt16LE(ctrl.cntlid, 78);
  b.writeUInt32LE(NVME_VERSION, 80); // VER
  b.writeUInt32LE(io ? (1 << 8) | (1 << 11) : 0x80000000, 92); // OAES: NS attribute + ANA change notices; discovery log change
  b.writeUInt32LE((1 << 0) | (1 << 6), 96); // CTRATT: 128-bit host id, traffic based keep alive
  b[111] = io ? 1 : 2; // CNTRLTYPE: I/O or discovery controller
  b.writeUInt16LE(0, 256); // OACS: no optional admin commands
  b[258] = 3; // ACL (0's based)
  b[259] = AERL;
  b[260] = 0x03; // FRMW: slot 1 read-only, one slot
  b[261] = 0x06; // LPA: commands supported & effects log, extended data for Get Log Page
  b[262] = ERROR_LOG_ENTRIES - 1; // ELPE
  b.writeUInt16LE(10, 320); // KAS: keep alive granularity 1 s (units of 100 ms)
  if (io) {
    b[342] = 10; // ANATT, seconds
    b[343] = 0x5f; // ANACAP: opt, non-opt, inaccessible, persistent loss, change; ANAGRPID fixed
    b.writeUInt32LE(ANA_GROUP_MAX, 344); // ANAGRPMAX
    b.writeUInt32LE(ANA_GROUP_MAX, 348); // NANAGRPID
  }
  b[512] = 0x66; // SQES
  b[513] = 0x44; // CQES
  b.writeUInt16LE(MQES + 1, 514); // MAXCMD
  b.writeUInt32LE(io ? MAX_NAMESPACES : 0, 516); // NN
  b.writeUInt16LE(io ? 0x0d : 0, 520); // ONCS: Compare, Dataset Management, Write Zeroes
  b[525] = io ? 0x07 : 0; // VWC: present; Flush with NSID FFFFFFFFh supported
  b.writeUInt32LE((1 << 0) | (1 << 20), 536); // SGLS: SGLs supported; SGL offset (in-capsule)
  b.writeUInt32LE(io ? MAX_NAMESPACES : 0, 540); // MNAN
  putNqn(b, 768, 256, sub.nqn); // SUBNQN
  // NVMe over Fabrics attributes
  b.writeUInt32LE((64 + MAX_ICD) / 16, 1792); // IOCCSZ, 16-byte units
  b.writeUInt32LE(1, 1796); // IORCSZ
  b.writeUInt16LE(0, 1800); // ICDOFF
  b[1802] = 0; // FCATT: dynamic controller model
  b[1803] = 1; // MSDBD
  b.writeUInt16LE(1, 1804); // OFCS: Disconnect supported
  return b;
}

/** Identify Namespace for `ns`; `usedBytes` gives NUSE. */
export function identifyNamespace(ns: Namespace, usedBytes: number): Buffer {
  const b = Buffer.alloc(4096);
  const blocks = BigInt(ns.blocks);
  b.writeBigUInt64LE(blocks, 0); // NSZE
  b.writeBigUInt64LE(blocks, 8); // NCAP
  b.writeBigUInt64LE(BigInt(Math.min(ns.blocks, Math.ceil(usedBytes / LBA_SIZE))), 16); // NUSE
  b[24] = 0x01; // NSFEAT: thin provisioning (NUSE is the allocated size)
  b[25] = 0; // NLBAF: one format
  b[26] = 0; // FLBAS: format 0, no metadata
  b[30] = 0x01; // NMIC: may be attached to several controllers
  b[33] = 0x09; // DLFEAT: deallocated blocks read as zeros; Write Zeroes may deallocate
  b.writeBigUInt64LE(blocks * BigInt(LBA_SIZE), 48); // NVMCAP (low 64 bits of 128)
  b.writeUInt32LE(ns.anaGroupId, 92); // ANAGRPID
  ns.nguid.copy(b, 104); // NGUID
  b.writeUInt32LE(Math.log2(LBA_SIZE) << 16, 128); // LBAF0: LBADS = 12, MS = 0, RP = 0
  return b;
}

/** Active Namespace ID list: NSIDs greater than `after`, ascending, at most 1024. */
export function activeNamespaceList(nsids: number[], after: number): Buffer {
  const b = Buffer.alloc(4096);
  let off = 0;
  for (const n of nsids.filter((x) => x > after).sort((x, y) => x - y).slice(0, 1024)) {
    b.writeUInt32LE(n, off);
    off += 4;
  }
  return b;
}

/** Namespace Identification Descriptor list: NGUID (NIDT 2), UUID (NIDT 3), CSI (NIDT 4) = NVM. */
export function namespaceDescriptors(ns: Namespace): Buffer {
  const b = Buffer.alloc(4096);
  let off = 0;
  const put = (nidt: number, id: Buffer) => {
    b[off] = nidt;
    b[off + 1] = id.length;
    id.copy(b, off + 4);
    off += 4 + id.length;
  };
  put(0x02, ns.nguid);
  put(0x03, ns.uuid);
  put(0x04, Buffer.from([0]));
  return b;
}

/** I/O Command Set specific Identify Controller for the NVM command set (CNS 06h): no extra limits. */
export function nvmIdentifyController(): Buffer {
  return Buffer.alloc(4096); // VSL, WZSL, WUSL, DMRL, DMRSL, DMSL = 0: no limits beyond MDTS
}

/** I/O Command Set specific Identify Namespace for the NVM command set (CNS 05h). */
export function nvmIdentifyNamespace(): Buffer {
  return Buffer.alloc(4096); // no protection information / extended LBA formats
}
