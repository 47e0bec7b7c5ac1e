/**
 * Write batching per event-loop turn: the first write to a socket in a turn corks it, and it
 * is uncorked once the turn's callbacks have run, so every reply or request queued in that
 * turn leaves in one writev — many messages per system call (DESIGN "Performance
 * principles"). The first write of a turn also starts the process's loop poller, if it is on
 * (loop-poll.ts).
 */
import type { Socket } from 'node:net';
import { loopPoll } from './loop-poll.ts';

/** When the batch of a turn is released. */
export type CorkRelease = 'nextTick' | 'immediate';

/** Corks one socket for the rest of the current turn on the first hold(). */
export class TickCork {
  private corked = false;

  /**
   * @param socket the socket to batch writes on
   * @param release 'nextTick' (default: after the current operation's microtasks) or
   *        'immediate' (the check phase: also gathers writes made by I/O callbacks of this
   *        poll phase)
   */
  constructor(private readonly socket: Socket, private readonly release: CorkRelease = 'nextTick') {}

  /** Corks the socket unless it is already corked in this turn. Call before writing. */
  hold(): void {
    if (this.corked) return;
    this.corked = true;
    // A request or reply is leaving: its answer (or the peer's next request) is due soon.
    loopPoll.expect();
    this.socket.cork();
    if (this.release === 'immediate') setImmediate(this.uncork);
    else process.nextTick(this.uncork);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    if (!this.socket.destroyed) this.socket.uncork();
  };
}
