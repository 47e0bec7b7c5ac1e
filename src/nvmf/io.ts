/**
 * NVM command set I/O commands (NVM Command Set Specification 1.0 §3): Read, Write, Flush,
 * Write Zeroes, Dataset Management (deallocate → BlockDevice.trim) and Compare, over a
 * BlockDevice with 4 KiB logical blocks. The volatile write cache is honoured: Flush makes
 * completed writes durable, FUA (or a disabled cache) makes a write durable before completion.
 *
 * Commands are checked in `prepareIo` before any data moves (namespace, ANA state, LBA range,
 * transfer length) and run in `executeIo` once the host's data (if any) has arrived.
 */
import type { Logger } from 'pino';
import { BlockDeviceError } from '../volume/index.ts';
import { IoOpc } from './command.ts';
import { MAX_TRANSFER, type Controller } from './controller.ts';
import type { Completion, Request } from './request.ts';
import { S, SUCCESS, statusForBlockError } from './status.ts';
import { LBA_SIZE, type Namespace } from './subsystem.ts';

/** What I/O commands need from the target. */
export interface IoContext {
  /** This gateway just took the namespace's write lease through `ctrl`'s port. */
  leaseTaken(ns: Namespace, ctrl: Controller): void;
  /** The volume reported EFENCED: another gateway holds the lease now. */
  leaseLost(ns: Namespace, ctrl: Controller): void;
  /** Where a failed command is logged (once, with its cause). */
  readonly logger: Logger;
}

const NSID_ALL = 0xffffffff;

/** Starting LBA (CDW10 low, CDW11 high) of a read/write-style command. */
export function slbaOf(req: Request): number {
  return req.sqe.cdw(10) + req.sqe.cdw(11) * 2 ** 32;
}

/** Number of logical blocks (CDW12 bits 15:0, 0's based) of a read/write-style command. */
function nlbOf(req: Request): number {
  return (req.sqe.cdw(12) & 0xffff) + 1;
}

function anaStatus(ns: Namespace, ctrl: Controller): number {
  switch (ctrl.subsystem.ana.get(ctrl.port.portId, ns.anaGroupId)) {
    case 'inaccessible':
      return S.ANA_INACCESSIBLE;
    case 'persistent-loss':
      return S.ANA_PERSISTENT_LOSS;
    case 'change':
      return S.ANA_TRANSITION;
    default:
      return SUCCESS;
  }
}

/**
 * Validates an I/O command before its data moves. Returns a status (SUCCESS to proceed).
 * Checks, in order: opcode, fused operation, namespace, ANA state, LBA range, transfer length.
 */
export function prepareIo(req: Request, ctrl: Controller): number {
  const op = req.sqe.opcode;
  if (op !== IoOpc.FLUSH && op !== IoOpc.WRITE && op !== IoOpc.READ && op !== IoOpc.COMPARE && op !== IoOpc.WRITE_ZEROES && op !== IoOpc.DSM) return S.INVALID_OPCODE;
  if (req.sqe.fuse !== 0) return S.INVALID_FIELD;
  const nsid = req.sqe.nsid;
  if (op === IoOpc.FLUSH && nsid === NSID_ALL) return SUCCESS;
  const ns = ctrl.subsystem.namespaces.get(nsid);
  if (!ns) return S.INVALID_NS;
  const ana = anaStatus(ns, ctrl);
  if (ana !== SUCCESS) return ana;
  switch (op) {
    case IoOpc.READ:
    case IoOpc.WRITE:
    case IoOpc.COMPARE:
    case IoOpc.WRITE_ZEROES: {
      const slba = slbaOf(req);
      const nlb = nlbOf(req);
      if (slba + nlb > ns.blocks) return S.LBA_OUT_OF_RANGE;
      if (op === IoOpc.WRITE_ZEROES) return SUCCESS;
      const len = nlb * LBA_SIZE;
      if (len > MAX_TRANSFER) return S.INVALID_FIELD;
      if (req.sqe.sglLength !== len) return S.DATA_SGL_LENGTH_INVALID;
      return SUCCESS;
    }
    case IoOpc.DSM: {
      const nr = (req.sqe.cdw(10) & 0xff) + 1;
      if (req.sqe.sglLength < nr * 16 || req.sqe.sglLength > 4096) return S.DATA_SGL_LENGTH_INVALID;
      return SUCCESS;
    }
    default:
      return SUCCESS;
  }
}

function fail(e: unknown, req: Request, write: boolean, ns: Namespace, ctrl: Controller, ctx: IoContext): Completion {
  const status = e instanceof BlockDeviceError ? statusForBlockError(e.code, write) : S.INTERNAL_ERROR;
  ctx.logger.warn({
    nqn: ctrl.subsystem.nqn, cntlid: ctrl.cntlid, nsid: ns.nsid, opcode: req.sqe.opcode, slba: slbaOf(req), nlb: nlbOf(req),
    code: e instanceof BlockDeviceError ? e.code : undefined, status: `0x${status.toString(16)}`, err: (e as Error).message,
  }, 'NVMe I/O command failed');
  if (e instanceof BlockDeviceError) {
    if (e.code === 'EFENCED') ctx.leaseLost(ns, ctrl);
    if (e.code === 'EIO' || e.code === 'EBADCRC') ns.counters.mediaErrors++;
  }
  return { status };
}

/** Runs a prepared I/O command (its host data, if any, is in `req.data`). */
export async function executeIo(req: Request, ctrl: Controller, ctx: IoContext): Promise<Completion> {
  const op = req.sqe.opcode;
  const nsid = req.sqe.nsid;
  if (op === IoOpc.FLUSH && nsid === NSID_ALL) {
    for (const ns of ctrl.subsystem.namespaces.values()) {
      const r = await executeOn(req, ns, ctrl, ctx);
      if (r.status !== SUCCESS) return r;
    }
    return { status: SUCCESS };
  }
  return executeOn(req, ctrl.subsystem.namespaces.get(nsid)!, ctrl, ctx);
}

async function executeOn(req: Request, ns: Namespace, ctrl: Controller, ctx: IoContext): Promise<Completion> {
  const op = req.sqe.opcode;
  const write = op === IoOpc.WRITE || op === IoOpc.WRITE_ZEROES || op === IoOpc.DSM;
  try {
    if (await ns.ensureLease()) ctx.leaseTaken(ns, ctrl);
  } catch {
    return { status: S.NS_NOT_READY };
  }
  const dev = ns.device;
  const fua = (req.sqe.cdw(12) & (1 << 30)) !== 0 || !ctrl.wce;
  try {
    switch (op) {
      case IoOpc.READ: {
        const len = nlbOf(req) * LBA_SIZE;
        const data = await dev.read(slbaOf(req) * LBA_SIZE, len);
        if (data.length !== len) return { status: S.INTERNAL_ERROR };
        ns.counters.bytesRead += len;
        ns.counters.readCommands++;
        return { status: SUCCESS, data };
      }
      case IoOpc.WRITE: {
        await dev.write(slbaOf(req) * LBA_SIZE, req.data!, fua);
        ns.counters.bytesWritten += req.data!.length;
        ns.counters.writeCommands++;
        return { status: SUCCESS };
      }
      case IoOpc.COMPARE: {
        const cur = await dev.read(slbaOf(req) * LBA_SIZE, req.data!.length);
        ns.counters.bytesRead += cur.length;
        ns.counters.readCommands++;
        return { status: cur.equals(req.data!) ? SUCCESS : S.COMPARE_FAILURE };
      }
      case IoOpc.WRITE_ZEROES: {
        await dev.writeZeroes(slbaOf(req) * LBA_SIZE, nlbOf(req) * LBA_SIZE, fua);
        ns.counters.writeCommands++;
        return { status: SUCCESS };
      }
      case IoOpc.FLUSH:
        await dev.flush();
        return { status: SUCCESS };
      case IoOpc.DSM: {
        const nr = (req.sqe.cdw(10) & 0xff) + 1;
        const deallocate = (req.sqe.cdw(11) & 4) !== 0;
        const d = req.data!;
        const ranges: [number, number][] = [];
        for (let i = 0; i < nr; i++) {
          const nlb = d.readUInt32LE(i * 16 + 4);
          const slba = d.readUInt32LE(i * 16 + 8) + d.readUInt32LE(i * 16 + 12) * 2 ** 32;
          if (slba + nlb > ns.blocks) return { status: S.LBA_OUT_OF_RANGE };
          if (nlb > 0) ranges.push([slba, nlb]);
        }
        if (deallocate) for (const [slba, nlb] of ranges) await dev.trim(slba * LBA_SIZE, nlb * LBA_SIZE);
        return { status: SUCCESS };
      }
      default:
        return { status: S.INVALID_OPCODE };
    }
  } catch (e) {
    return fail(e, req, write, ns, ctrl, ctx);
  }
}
