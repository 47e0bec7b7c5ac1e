/**
 * src/nvmf: Cairn's NVMe/TCP target — the protocol only. Serves BlockDevices as NVMe
 * namespaces to unmodified hosts (Linux nvme-tcp + nvme-cli), with discovery, host NQN
 * allow-lists and ANA multipath. Specifications followed: NVMe Base 2.0, NVM Command Set 1.0,
 * NVMe over Fabrics 1.1, NVMe/TCP Transport 1.0. It knows nothing of the cluster: serving
 * cluster volumes (leases, space figures, the gateway process) lives in src/gateway.
 *
 *   const t = new NvmfTarget({ cntlidRange: [1, 999] });
 *   t.addSubsystem({ nqn, allowHosts: [hostnqn], namespaces: [{ nsid: 1, device }] });
 *   await t.listen({ portId: 1, host: '127.0.0.1', port: 4420 });
 */
export { NvmfTarget } from './target.ts';
/** Options of the target and of one listening port (see target.ts). */
export type { TargetOptions, ListenOptions } from './target.ts';
/** A subsystem's and a namespace's configuration, remote paths, the lease hook and SMART figures (see subsystem.ts). */
export type { SubsystemConfig, NamespaceConfig, PathConfig, VolumeLease, VolumeHealth } from './subsystem.ts';
export { Subsystem, Namespace, LBA_SIZE, MAX_NAMESPACES } from './subsystem.ts';
/** An ANA state (NVMe Base 2.0 §8.20): optimized, non-optimized, inaccessible, … */
export type { AnaState } from './ana.ts';
export { ANA_STATES } from './ana.ts';
/** A listening port as the discovery log page lists it. */
export type { PortInfo } from './discovery.ts';
export { DISCOVERY_NQN, volumeNqn, isValidNqn, deriveNguid, deriveUuid, uuidString } from './ids.ts';
export { MAXH2CDATA } from './connection.ts';
export { MAX_TRANSFER, MAX_ICD, MQES } from './controller.ts';
export { S as NvmeStatus, status as nvmeStatus, statusForBlockError } from './status.ts';
