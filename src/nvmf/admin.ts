/**
 * Admin commands (NVMe Base 2.0 §5): Identify, Get Log Page, Set / Get Features (Number of
 * Queues, Async Event Configuration, Keep Alive Timer, Volatile Write Cache, Power
 * Management), Asynchronous Event Request, Keep Alive and Abort, for I/O and discovery
 * controllers.
 */
import { buildAnaLog, type AnaGroupEntry } from './ana.ts';
import { AdminOpc } from './command.ts';
import { Aec, MAX_IO_QUEUES, MAX_TRANSFER, type Controller } from './controller.ts';
import {
  activeNamespaceList,
  identifyController,
  identifyNamespace,
  namespaceDescriptors,
  nvmIdentifyController,
  nvmIdentifyNamespace,
} from './identify.ts';
import { Lid, changedNamespaceLog, effectsLog, errorLog, firmwareSlotLog, smartLog, type HealthFigures } from './log-pages.ts';
import type { Completion, Request } from './request.ts';
import { S, SUCCESS } from './status.ts';
import { MAX_NAMESPACES, type VolumeHealth } from './subsystem.ts';

/** Feature identifiers (NVMe Base 2.0 figure "Feature Identifiers"). */
export const Fid = {
  POWER_MGMT: 0x02,
  VOLATILE_WRITE_CACHE: 0x06,
  NUM_QUEUES: 0x07,
  ASYNC_EVENT_CONFIG: 0x0b,
  KEEP_ALIVE_TIMER: 0x0f,
} as const;

/** What admin commands need from the target. */
export interface AdminContext {
  /** The discovery log page as the controller's host may see it. */
  discoveryLog(ctrl: Controller, portLocalOnly: boolean): Buffer;
  /** Makes every namespace of the controller's subsystem durable. */
  flush(ctrl: Controller): Promise<void>;
}

/** Async event configuration bits a controller accepts. */
function supportedAec(ctrl: Controller): number {
  return ctrl.discovery ? Aec.DISCOVERY_CHANGE : 0xff | Aec.NS_ATTR | Aec.ANA_CHANGE;
}

/** Executes an admin command on a ready controller. */
export function adminCommand(req: Request, ctrl: Controller, ctx: AdminContext): Completion | Promise<Completion> {
  switch (req.sqe.opcode) {
    case AdminOpc.IDENTIFY:
      return identify(req, ctrl);
    case AdminOpc.GET_LOG_PAGE:
      return getLogPage(req, ctrl, ctx);
    case AdminOpc.SET_FEATURES:
      return setFeatures(req, ctrl, ctx);
    case AdminOpc.GET_FEATURES:
      return getFeatures(req, ctrl);
    case AdminOpc.ASYNC_EVENT_REQUEST: {
      const w = ctrl.waitEvent(req.cid);
      if (w === 'limit') return { status: S.AER_LIMIT_EXCEEDED };
      return w.then((dw0) => (dw0 === undefined ? { status: S.ABORT_REQUESTED } : { status: SUCCESS, result: dw0 }));
    }
    case AdminOpc.KEEP_ALIVE:
      ctrl.touch();
      return { status: SUCCESS };
    case AdminOpc.ABORT: {
      if (ctrl.discovery) return { status: S.INVALID_OPCODE };
      const sqid = req.sqe.cdw(10) & 0xffff;
      const cid = req.sqe.cdw(10) >>> 16;
      // Only a pending Asynchronous Event Request can be taken back; commands already handed to
      // the volume run to completion (DW0 bit 0 = 1: not aborted), which the spec allows.
      const aborted = sqid === 0 && ctrl.abortEvent(cid);
      return { status: SUCCESS, result: aborted ? 0 : 1 };
    }
    default:
      return { status: S.INVALID_OPCODE };
  }
}

function needData(req: Request, len: number): boolean {
  return req.sqe.sglLength >= len;
}

async function identify(req: Request, ctrl: Controller): Promise<Completion> {
  const cns = req.sqe.cdw(10) & 0xff;
  const csi = req.sqe.cdw(11) >>> 24;
  const nsid = req.sqe.nsid;
  if (!needData(req, 4096)) return { status: S.DATA_SGL_LENGTH_INVALID };
  if (ctrl.discovery && cns !== 0x01) return { status: S.INVALID_FIELD };
  const sub = ctrl.subsystem;
  switch (cns) {
    case 0x00: {
      if (nsid === 0 || nsid > MAX_NAMESPACES) return { status: S.INVALID_NS };
      const ns = sub.namespaces.get(nsid);
      if (!ns) return { status: SUCCESS, data: Buffer.alloc(4096) };
      const used = ns.usage ? await ns.usage().catch(() => ns.device.size) : ns.device.size;
      return { status: SUCCESS, data: identifyNamespace(ns, used) };
    }
    case 0x01:
      return { status: SUCCESS, data: identifyController(ctrl) };
    case 0x02:
      if (nsid >= 0xfffffffe) return { status: S.INVALID_NS };
      return { status: SUCCESS, data: activeNamespaceList([...sub.namespaces.keys()], nsid) };
    case 0x03: {
      const ns = sub.namespaces.get(nsid);
      if (!ns) return { status: S.INVALID_NS };
      return { status: SUCCESS, data: namespaceDescriptors(ns) };
    }
    case 0x05: {
      if (csi !== 0) return { status: S.INVALID_FIELD };
      if (nsid === 0 || nsid > MAX_NAMESPACES) return { status: S.INVALID_NS };
      return { status: SUCCESS, data: sub.namespaces.has(nsid) ? nvmIdentifyNamespace() : Buffer.alloc(4096) };
    }
    case 0x06:
      if (csi !== 0) return { status: S.INVALID_FIELD };
      return { status: SUCCESS, data: nvmIdentifyController() };
    default:
      return { status: S.INVALID_FIELD };
  }
}

async function healthFigures(ctrl: Controller): Promise<HealthFigures> {
  const f: HealthFigures = { bytesRead: 0, bytesWritten: 0, readCommands: 0, writeCommands: 0, mediaErrors: 0, errorLogEntries: ctrl.errorCount, powerOnHours: 0 };
  let free = 1;
  for (const ns of ctrl.subsystem.namespaces.values()) {
    const v: VolumeHealth = ns.health ? await ns.health().catch(() => ({})) : {};
    const c = ns.counters;
    f.bytesRead += v.bytesRead ?? c.bytesRead;
    f.bytesWritten += v.bytesWritten ?? c.bytesWritten;
    f.readCommands += v.readCommands ?? c.readCommands;
    f.writeCommands += v.writeCommands ?? c.writeCommands;
    f.mediaErrors += v.mediaErrors ?? c.mediaErrors;
    if (v.poolFreeFraction !== undefined) free = Math.min(free, v.poolFreeFraction);
  }
  f.poolFreeFraction = free;
  f.powerOnHours = Math.floor((Date.now() - ctrl.owner.startedAt) / 3_600_000);
  return f;
}

function anaLog(ctrl: Controller, rgo: boolean): Buffer {
  const sub = ctrl.subsystem;
  const groups: AnaGroupEntry[] = [];
  for (const [groupId, nsids] of sub.anaGroups()) {
    groups.push({ groupId, nsids, state: sub.ana.get(ctrl.port.portId, groupId), chgcnt: sub.ana.changedAt(ctrl.port.portId, groupId) });
  }
  return buildAnaLog(sub.ana.changeCount, groups, rgo);
}

async function getLogPage(req: Request, ctrl: Controller, ctx: AdminContext): Promise<Completion> {
  const c10 = req.sqe.cdw(10);
  const lid = c10 & 0xff;
  const lsp = (c10 >> 8) & 0x7f;
  const rae = (c10 & 0x8000) !== 0;
  const numd = ((c10 >>> 16) | ((req.sqe.cdw(11) & 0xffff) << 16)) + 1;
  const offset = req.sqe.cdw(12) + req.sqe.cdw(13) * 2 ** 32;
  const ot = (req.sqe.cdw(14) >> 23) & 1;
  const len = numd * 4;
  if (len > MAX_TRANSFER) return { status: S.INVALID_FIELD };
  if (!needData(req, len)) return { status: S.DATA_SGL_LENGTH_INVALID };
  if (offset % 4 !== 0 || ot) return { status: S.INVALID_FIELD };
  let page: Buffer;
  const allowed = ctrl.discovery ? [Lid.ERROR, Lid.EFFECTS, Lid.DISCOVERY] : [Lid.ERROR, Lid.SMART, Lid.FW_SLOT, Lid.CHANGED_NS, Lid.EFFECTS, Lid.ANA];
  if (!(allowed as number[]).includes(lid)) return { status: S.INVALID_LOG_PAGE };
  switch (lid) {
    case Lid.ERROR:
      page = errorLog(ctrl.errors);
      break;
    case Lid.SMART:
      page = smartLog(await healthFigures(ctrl));
      break;
    case Lid.FW_SLOT:
      page = firmwareSlotLog();
      break;
    case Lid.CHANGED_NS:
      page = changedNamespaceLog([...ctrl.changedNs]);
      if (!rae) ctrl.changedNs.clear();
      break;
    case Lid.EFFECTS:
      page = effectsLog(ctrl.discovery);
      break;
    case Lid.ANA:
      page = anaLog(ctrl, (lsp & 1) !== 0);
      break;
    default:
      page = ctx.discoveryLog(ctrl, (lsp & 1) !== 0);
  }
  if (offset > page.length) return { status: S.INVALID_FIELD };
  if (!rae) ctrl.logRead(lid);
  const out = Buffer.alloc(len);
  page.copy(out, 0, offset, Math.min(page.length, offset + len));
  return { status: SUCCESS, data: out };
}

async function setFeatures(req: Request, ctrl: Controller, ctx: AdminContext): Promise<Completion> {
  const c10 = req.sqe.cdw(10);
  const fid = c10 & 0xff;
  const sv = (c10 & 0x80000000) !== 0;
  const v = req.sqe.cdw(11);
  if (sv) return { status: S.FEATURE_NOT_SAVEABLE };
  if (ctrl.discovery && fid !== Fid.ASYNC_EVENT_CONFIG && fid !== Fid.KEEP_ALIVE_TIMER) return { status: S.INVALID_FIELD };
  switch (fid) {
    case Fid.NUM_QUEUES: {
      const nsqr = v & 0xffff;
      const ncqr = v >>> 16;
      if (nsqr === 0xffff || ncqr === 0xffff) return { status: S.INVALID_FIELD };
      if ([...ctrl.queues.keys()].some((q) => q > 0)) return { status: S.CMD_SEQUENCE_ERROR };
      ctrl.ioQueues = Math.min(MAX_IO_QUEUES, nsqr + 1, ncqr + 1);
      return { status: SUCCESS, result: (ctrl.ioQueues - 1) | ((ctrl.ioQueues - 1) << 16) };
    }
    case Fid.ASYNC_EVENT_CONFIG:
      ctrl.aec = v & supportedAec(ctrl);
      return { status: SUCCESS };
    case Fid.KEEP_ALIVE_TIMER:
      ctrl.kato = v;
      ctrl.touch();
      ctrl.armKeepAlive();
      return { status: SUCCESS };
    case Fid.VOLATILE_WRITE_CACHE: {
      const wce = (v & 1) === 1;
      if (ctrl.wce && !wce) await ctx.flush(ctrl);
      ctrl.wce = wce;
      return { status: SUCCESS };
    }
    case Fid.POWER_MGMT:
      return (v & 0x1f) === 0 ? { status: SUCCESS } : { status: S.INVALID_FIELD };
    default:
      return { status: S.INVALID_FIELD };
  }
}

function getFeatures(req: Request, ctrl: Controller): Completion {
  const c10 = req.sqe.cdw(10);
  const fid = c10 & 0xff;
  const sel = (c10 >> 8) & 7;
  if (sel > 3) return { status: S.INVALID_FIELD };
  if (ctrl.discovery && fid !== Fid.ASYNC_EVENT_CONFIG && fid !== Fid.KEEP_ALIVE_TIMER) return { status: S.INVALID_FIELD };
  const dflt = sel === 1 || sel === 2; // nothing is saveable: saved = default
  const CHANGEABLE = 1 << 2;
  switch (fid) {
    case Fid.NUM_QUEUES: {
      const n = (dflt ? MAX_IO_QUEUES : ctrl.ioQueues) - 1;
      return { status: SUCCESS, result: sel === 3 ? CHANGEABLE : n | (n << 16) };
    }
    case Fid.ASYNC_EVENT_CONFIG:
      return { status: SUCCESS, result: sel === 3 ? CHANGEABLE : dflt ? 0 : ctrl.aec };
    case Fid.KEEP_ALIVE_TIMER:
      return { status: SUCCESS, result: sel === 3 ? CHANGEABLE : dflt ? 0 : ctrl.kato };
    case Fid.VOLATILE_WRITE_CACHE:
      return { status: SUCCESS, result: sel === 3 ? CHANGEABLE : dflt ? 1 : ctrl.wce ? 1 : 0 };
    case Fid.POWER_MGMT:
      return { status: SUCCESS, result: sel === 3 ? 0 : 0 };
    default:
      return { status: S.INVALID_FIELD };
  }
}
