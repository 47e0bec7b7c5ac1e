/**
 * One command in flight on a queue, and the completion a handler produces for it. Shared by
 * the transport (connection.ts) and the command handlers (fabrics, admin, io).
 */
import type { Sqe } from './command.ts';
import type { Controller } from './controller.ts';

/** What a command handler returns: a status and optional result dwords and controller-to-host data. */
export interface Completion {
  /** Status (status.ts representation; 0 = success). */
  status: number;
  /** Completion DW0. */
  result?: number;
  /** Completion DW1 (Property Get of an 8-byte property). */
  resultHi?: number;
  /** Data for the host (sent as C2HData before the response). */
  data?: Buffer;
}

/** The queue side a handler may use. */
export interface QueueHandle {
  /** Queue id; -1 until a Connect succeeds on the queue. */
  readonly qid: number;
  /** The controller the queue belongs to (undefined before Connect). */
  readonly controller: Controller | undefined;
  /** Local port id the queue's connection arrived on. */
  readonly portId: number;
  /** Closes the queue's connection (after pending writes). */
  close(reason: string): void;
}

/** A command being processed. */
export class Request {
  /** Host-to-controller data, once transferred (in-capsule or by R2T/H2CData). */
  data: Buffer | undefined;
  /** Set when the command must not complete (e.g. it was aborted); the handler's result is dropped. */
  dropped = false;

  constructor(
    readonly sqe: Sqe,
    readonly queue: QueueHandle,
  ) {}

  /** The command identifier. */
  get cid(): number {
    return this.sqe.cid;
  }
}
