/**
 * Fabrics commands (NVMe-oF 1.1 §3.3–3.6): Connect (admin and I/O queues, dynamic controller
 * model, host NQN allow-list), Property Get / Property Set (CAP, VS, CC, CSTS) and Disconnect.
 */
import { FcType } from './command.ts';
import { CAP, MQES, NVME_VERSION, type Controller } from './controller.ts';
import { getNulString, isValidNqn } from './ids.ts';
import type { Completion, QueueHandle, Request } from './request.ts';
import { S, SUCCESS } from './status.ts';
import type { Subsystem } from './subsystem.ts';

/** Property offsets (NVMe Base 2.0 figure "Property Definition"). */
export const Prop = { CAP: 0x00, VS: 0x08, CC: 0x14, CSTS: 0x1c } as const;

/** Byte offsets inside the Connect command (SQE) and its 1024-byte data, for IPO values. */
export const ConnectOff = { recfmt: 40, qid: 42, sqsize: 44, cattr: 46, kato: 48, hostid: 0, cntlid: 16, subnqn: 256, hostnqn: 512 } as const;

/** The target services a Connect needs. */
export interface FabricsContext {
  /** The subsystem named `nqn` exported on `portId` (the discovery subsystem included). */
  findSubsystem(nqn: string, portId: number): Subsystem | undefined;
  /** A new controller for the association, or undefined if no controller id is free. */
  createController(sub: Subsystem, hostnqn: string, hostid: Buffer, portId: number, kato: number): Controller | undefined;
  /** An existing controller of `sub` by id. */
  findController(sub: Subsystem, cntlid: number): Controller | undefined;
  /** Flushes every namespace of the controller's subsystem (shutdown). */
  flush(ctrl: Controller): Promise<void>;
}

/** A queue Connect can bind. */
export interface ConnectableQueue extends QueueHandle {
  bind(qid: number, sqsize: number, ctrl: Controller): void;
}

function invalidParam(inData: boolean, offset: number): Completion {
  return { status: S.CONNECT_INVALID_PARAMETERS, result: (inData ? 1 << 16 : 0) | offset };
}

/** Executes a fabrics command (opcode 7Fh). */
export function fabricsCommand(req: Request, ctx: FabricsContext, queue: ConnectableQueue): Completion | Promise<Completion> {
  const t = req.sqe.fctype;
  if (t === FcType.CONNECT) return connect(req, ctx, queue);
  const ctrl = queue.controller;
  if (!ctrl || queue.qid < 0) return { status: S.CMD_SEQUENCE_ERROR };
  switch (t) {
    case FcType.PROPERTY_GET:
    case FcType.PROPERTY_SET:
      if (queue.qid !== 0) return { status: S.INVALID_QUEUE_TYPE };
      return t === FcType.PROPERTY_GET ? propertyGet(req, ctrl) : propertySet(req, ctrl, ctx);
    case FcType.DISCONNECT:
      if (queue.qid === 0) return { status: S.INVALID_QUEUE_TYPE };
      if (req.sqe.buf.readUInt16LE(40) !== 0) return { status: S.CONNECT_INCOMPATIBLE_FORMAT };
      setImmediate(() => queue.close('Disconnect'));
      return { status: SUCCESS };
    default:
      return { status: S.INVALID_OPCODE };
  }
}

/**
 * Connect (NVMe-oF 1.1 §3.3). A host the subsystem's allow-list refuses is refused with
 * Connect Invalid Host — after the subsystem asked its owner for the current list, when it
 * can (a host just added elsewhere connects at once, not at the owner's next refresh).
 */
function connect(req: Request, ctx: FabricsContext, queue: ConnectableQueue, rechecked = false): Completion | Promise<Completion> {
  const b = req.sqe.buf;
  if (queue.qid >= 0) return { status: S.CMD_SEQUENCE_ERROR };
  if (b.readUInt16LE(ConnectOff.recfmt) !== 0) return { status: S.CONNECT_INCOMPATIBLE_FORMAT };
  const data = req.data;
  if (!data || data.length < 1024) return { status: S.DATA_SGL_LENGTH_INVALID };
  const qid = b.readUInt16LE(ConnectOff.qid);
  const sqsize = b.readUInt16LE(ConnectOff.sqsize);
  const kato = b.readUInt32LE(ConnectOff.kato);
  const hostid = Buffer.from(data.subarray(0, 16));
  const cntlid = data.readUInt16LE(ConnectOff.cntlid);
  const subnqn = getNulString(data, ConnectOff.subnqn, 256);
  const hostnqn = getNulString(data, ConnectOff.hostnqn, 256);
  if (subnqn === undefined || !isValidNqn(subnqn)) return invalidParam(true, ConnectOff.subnqn);
  if (hostnqn === undefined || !isValidNqn(hostnqn)) return invalidParam(true, ConnectOff.hostnqn);
  const sub = ctx.findSubsystem(subnqn, queue.portId);
  if (!sub) return invalidParam(true, ConnectOff.subnqn);
  if (!sub.allows(hostnqn)) {
    if (!rechecked && sub.canRecheckHosts) return sub.allowsAfterRecheck(hostnqn).then(() => connect(req, ctx, queue, true));
    return { status: S.CONNECT_INVALID_HOST, result: (1 << 16) | ConnectOff.hostnqn };
  }
  if (sqsize < 1 || sqsize > MQES) return invalidParam(false, ConnectOff.sqsize);
  if (qid === 0) {
    if (cntlid !== 0xffff) return invalidParam(true, ConnectOff.cntlid);
    const ctrl = ctx.createController(sub, hostnqn, hostid, queue.portId, kato);
    if (!ctrl) return { status: S.CONNECT_CTRL_BUSY };
    queue.bind(0, sqsize, ctrl);
    return { status: SUCCESS, result: ctrl.cntlid };
  }
  const ctrl = ctx.findController(sub, cntlid);
  if (!ctrl || ctrl.destroyed) return invalidParam(true, ConnectOff.cntlid);
  if (ctrl.hostnqn !== hostnqn) return invalidParam(true, ConnectOff.hostnqn);
  if (!ctrl.hostid.equals(hostid)) return invalidParam(true, ConnectOff.hostid);
  if (ctrl.discovery || qid > ctrl.ioQueues || ctrl.queues.has(qid)) return invalidParam(false, ConnectOff.qid);
  if (!ctrl.ready) return { status: S.CMD_SEQUENCE_ERROR };
  queue.bind(qid, sqsize, ctrl);
  return { status: SUCCESS, result: ctrl.cntlid };
}

function propertyGet(req: Request, ctrl: Controller): Completion {
  const size8 = (req.sqe.buf[40] & 7) === 1;
  const ofst = req.sqe.buf.readUInt32LE(44);
  if (size8) {
    if (ofst !== Prop.CAP) return { status: S.INVALID_FIELD };
    return { status: SUCCESS, result: Number(CAP & 0xffffffffn), resultHi: Number(CAP >> 32n) };
  }
  switch (ofst) {
    case Prop.CAP:
      return { status: SUCCESS, result: Number(CAP & 0xffffffffn) };
    case Prop.CAP + 4:
      return { status: SUCCESS, result: Number(CAP >> 32n) };
    case Prop.VS:
      return { status: SUCCESS, result: NVME_VERSION };
    case Prop.CC:
      return { status: SUCCESS, result: ctrl.cc };
    case Prop.CSTS:
      return { status: SUCCESS, result: ctrl.csts };
    default:
      return { status: S.INVALID_FIELD };
  }
}

function propertySet(req: Request, ctrl: Controller, ctx: FabricsContext): Completion {
  const size8 = (req.sqe.buf[40] & 7) === 1;
  const ofst = req.sqe.buf.readUInt32LE(44);
  if (size8 || ofst !== Prop.CC) return { status: S.INVALID_FIELD };
  ctrl.setCc(req.sqe.buf.readUInt32LE(48), () => ctx.flush(ctrl));
  return { status: SUCCESS };
}
