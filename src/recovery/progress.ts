/**
 * Progress of one node's background data movement, per kind (resync, backfill, rebalance,
 * scrub): extents and bytes to do and done, a rate over the last ~10 s, and pass start and
 * end times — what `cairn recovery status` and `cairn status` add up over the nodes. A pass
 * starts when work of an idle kind arrives and ends when every extent of it is done; its
 * figures stay until the next pass. `snapshot()`/`restore()` let a restarted node continue
 * its counters (src/node/recovery-store.ts persists them).
 */
import { RECOVERY_KINDS, type RecoveryKind, type RecoveryProgress } from './report.ts';

/** How far back the rate looks (ms). */
const RATE_WINDOW_MS = 10000;

interface KindState {
  p: RecoveryProgress;
  /** (time ms, bytesDone) samples, oldest first, at most one per second. */
  samples: Array<[number, number]>;
}

/** Per-kind progress counters of one node. */
export class ProgressTracker {
  private readonly kinds = new Map<RecoveryKind, KindState>();

  constructor(private readonly now: () => number = Date.now) {
    for (const kind of RECOVERY_KINDS) {
      this.kinds.set(kind, {
        p: { kind, active: false, startedAt: null, finishedAt: null, extentsTotal: 0, extentsDone: 0, bytesTotal: 0, bytesDone: 0, rate: 0 },
        samples: [],
      });
    }
  }

  private state(kind: RecoveryKind): KindState {
    return this.kinds.get(kind)!;
  }

  /** Work of `kind` arrived: `extents` more extents holding about `bytes` bytes. Starts a pass when idle. */
  add(kind: RecoveryKind, extents: number, bytes: number): void {
    if (extents <= 0 && bytes <= 0) return;
    const s = this.state(kind);
    if (!s.p.active) {
      s.p = { kind, active: true, startedAt: this.now(), finishedAt: null, extentsTotal: 0, extentsDone: 0, bytesTotal: 0, bytesDone: 0, rate: 0 };
      s.samples = [[this.now(), 0]];
    }
    s.p.extentsTotal += extents;
    s.p.bytesTotal += bytes;
  }

  /** `extents` extents of `kind` finished, with `bytes` bytes; ends the pass when none is left. */
  done(kind: RecoveryKind, extents: number, bytes: number): void {
    const s = this.state(kind);
    if (!s.p.active) return;
    s.p.extentsDone = Math.min(s.p.extentsTotal, s.p.extentsDone + extents);
    s.p.bytesDone += bytes;
    if (s.p.bytesDone > s.p.bytesTotal) s.p.bytesTotal = s.p.bytesDone;
    this.sample(s);
    if (s.p.extentsDone >= s.p.extentsTotal) {
      s.p.active = false;
      s.p.finishedAt = this.now();
      s.p.rate = 0;
    }
  }

  /** `extents` extents of `kind` left the work without being done (no longer needed). */
  drop(kind: RecoveryKind, extents: number, bytes: number): void {
    const s = this.state(kind);
    if (!s.p.active) return;
    s.p.extentsTotal = Math.max(s.p.extentsDone, s.p.extentsTotal - extents);
    s.p.bytesTotal = Math.max(s.p.bytesDone, s.p.bytesTotal - bytes);
    if (s.p.extentsDone >= s.p.extentsTotal) {
      s.p.active = false;
      s.p.finishedAt = this.now();
      s.p.rate = 0;
    }
  }

  /** Ends a running pass of `kind` where it stands (work abandoned, e.g. a scrub cut short). */
  end(kind: RecoveryKind): void {
    const s = this.state(kind);
    if (!s.p.active) return;
    s.p.extentsTotal = s.p.extentsDone;
    s.p.bytesTotal = s.p.bytesDone;
    s.p.active = false;
    s.p.finishedAt = this.now();
    s.p.rate = 0;
  }

  private sample(s: KindState): void {
    const t = this.now();
    const last = s.samples[s.samples.length - 1];
    if (!last || t - last[0] >= 1000) s.samples.push([t, s.p.bytesDone]);
    else last[1] = s.p.bytesDone;
    while (s.samples.length > 2 && t - s.samples[1][0] > RATE_WINDOW_MS) s.samples.shift();
  }

  private rate(s: KindState): number {
    if (!s.p.active || s.samples.length === 0) return 0;
    const [t0, b0] = s.samples[0];
    const dt = (this.now() - t0) / 1000;
    return dt > 0.2 ? Math.round((s.p.bytesDone - b0) / dt) : 0;
  }

  /** Whether a pass of `kind` is running. */
  active(kind: RecoveryKind): boolean {
    return this.state(kind).p.active;
  }

  /** One entry per kind, in RECOVERY_KINDS order, with the current rate. */
  snapshot(): RecoveryProgress[] {
    return RECOVERY_KINDS.map((k) => {
      const s = this.state(k);
      return { ...s.p, rate: this.rate(s) };
    });
  }

  /** Takes up counters stored by an earlier run (active passes continue; rates start over). */
  restore(saved: RecoveryProgress[]): void {
    for (const p of saved) {
      const s = this.kinds.get(p.kind);
      if (!s) continue;
      s.p = { ...p, rate: 0 };
      s.samples = p.active ? [[this.now(), p.bytesDone]] : [];
    }
  }
}
