/**
 * The chaos workload: fio (nbd engine) writing crc32c-verifiable data through the gateway,
 * and the verify-only read passes that check it.
 *
 * The volume is cut into equal *slots*. Every fio write job is a *segment*: one pass of
 * random writes (4–64 KiB blocks, no block written twice) over one slot with
 * `--verify=crc32c --do_verify=0` (each 4 KiB carries fio's verify header and the block's
 * crc32c). Slots are used in turn, round robin; a segment whose slot is taken again is
 * dropped from the checked set.
 *
 * What a segment must hold is the list of its writes that completed: fio logs every write
 * that completed *successfully* with its offset (`--write_lat_log --log_offset=1`, the clat
 * log, written when fio exits). When fio does not exit on its own — its nbd engine can hang
 * on a connection a gateway kill left dead, and is then killed after a grace period — the
 * list comes from the gateway instead: it appends every write it acknowledged to acks.log
 * before its NBD reply (writes fio saw completed are a subset of those).
 *
 * A *verify pass* checks every live segment in one fio process: one read job per segment
 * replaying exactly its completed writes (`--read_iolog`), with `--verify=crc32c`, which
 * checks every 4 KiB's header (magic, offset, length) and the crc32c of the data. Failures
 * are parsed from fio's stderr ("... at file SEG.0.0 offset N ... (requested block:
 * offset=B ...") and counted per bad block (write).
 *
 * (fio's own `--verify_state_save/--verify_state_load` is not used: after a dropped
 * connection its state counts failed writes as completed, and a job's random offsets depend
 * on its index in the command, so segments could not be checked together.)
 *
 * A segment is *flushed* once a flush covered all its writes: an `--end_fsync=1` job that
 * completed, or a gateway flush (the same gateway incarnation that served its writes) after
 * the job ended. Writes acked by a gateway that was then killed are never counted flushed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GatewayProcess } from './gateway-process.ts';

/** One fio write job over one slot. */
export interface Segment {
  /** fio job name, unique in the run (e.g. "r3a1", "r3b2"). */
  name: string;
  round: number;
  slot: number;
  offset: number;
  size: number;
  randseed: number;
  /** Gateway incarnation that served its writes. */
  incarnation: number;
  /** When its fio started (ms since 1970). */
  startedAt: number;
  /** A flush covered every write of it (see the module comment). */
  flushed: boolean;
  /** The job wrote its whole slot (every block of it holds verifiable data). */
  complete: boolean;
  /** Where the list of its completed writes came from: fio's clat log, or the gateway's acks. */
  source: 'fio' | 'gateway';
  /** Its completed writes: [offset, length]. */
  done: Array<[number, number]>;
}

/** Result of one fio process. */
export interface FioRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** fio's JSON output (jobs), when it printed one. */
  jobs: Array<{ jobname: string; error: number; read: { io_kbytes: number; total_ios: number }; write: { io_kbytes: number; total_ios: number } }>;
  /** Killed by the watchdog (hung). */
  killed: boolean;
}

/** Bad blocks a verify pass found in one segment. */
export interface SegmentVerdict {
  segment: Segment;
  /** Distinct bad blocks (fio's "requested block" offsets). */
  badBlocks: number;
  /** Writes checked (fio's read I/Os). */
  checked: number;
  /** fio's first lines about this segment's failures. */
  lines: string[];
  /** The job failed otherwise (e.g. a read error), with fio's error number; -1: no result at all. */
  jobError: number;
}

/** Options of the workload. */
export interface WorkloadOptions {
  /** Directory for fio's logs and verify job files (fio's working directory). */
  stateDir: string;
  volumeBytes: number;
  slotBytes: number;
  gateway: GatewayProcess;
  /** fio --rate of background writes (e.g. "2m"). */
  backgroundRate: string;
  iodepth: number;
}

/**
 * `--thread`: jobs are threads of the one fio process, so killing it (a hung nbd engine) kills
 * them; fio's job *processes* call setsid() and would outlive a kill of their parent.
 */
const COMMON = ['--thread', '--ioengine=nbd', '--rw=randwrite', '--bsrange=4k-64k', '--verify=crc32c', '--output-format=json'];
/** Most segments one verify fio process checks (one NBD connection each). */
const VERIFY_BATCH = 16;
/** A write job still running this long after its gateway was killed is taken as hung (ms). */
const HUNG_AFTER_MS = 5000;

/** Parses fio's JSON output out of `stdout` (fio may print lines before it). */
function parseJobs(stdout: string): FioRun['jobs'] {
  const at = stdout.indexOf('{');
  if (at < 0) return [];
  try {
    return (JSON.parse(stdout.slice(at)) as { jobs: FioRun['jobs'] }).jobs ?? [];
  } catch {
    return [];
  }
}

/** fio processes of the run (each leads its own process group), so that a cleanup can kill what is left. */
const running = new Set<ChildProcess>();

/** Kills (SIGKILL) fio process `c` with its job processes (its process group). */
function killGroup(c: ChildProcess): void {
  try {
    process.kill(-c.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Kills (SIGKILL) every fio process still running, with its job processes. */
export function killAllFio(): void {
  for (const c of running) killGroup(c);
}

/**
 * Starts fio with `args` in `cwd` (its own process group); `onStart` gets the child (to stop
 * it early); `hung` is polled every 500 ms and the group is killed when it says so.
 */
function runFio(args: string[], cwd: string, onStart?: (c: ChildProcess) => void, hung?: () => boolean): Promise<FioRun> {
  return new Promise((resolve) => {
    const c = spawn('fio', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    running.add(c);
    let stdout = '';
    let stderr = '';
    let killed = false;
    const watch = hung ? setInterval(() => {
      if (!killed && hung()) {
        killed = true;
        killGroup(c);
      }
    }, 500) : null;
    c.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    // A hung nbd engine prints the same line in a loop: keep the head and the tail.
    c.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.length > 400000) stderr = `${stderr.slice(0, 100000)}\n...\n${stderr.slice(-100000)}`;
    });
    c.once('error', (e) => (stderr += `\nspawn fio: ${e.message}`));
    // Anything left holding fio's pipes must not keep the run waiting for 'close'.
    c.once('exit', () => setTimeout(() => {
      c.stdout!.destroy();
      c.stderr!.destroy();
    }, 2000).unref());
    c.once('close', (code, signal) => {
      if (watch) clearInterval(watch);
      running.delete(c);
      resolve({ code, signal, stdout, stderr, jobs: parseJobs(stdout), killed });
    });
    onStart?.(c);
  });
}

/** The verify-pass lines of fio's stderr that name a bad block: file, and the block's offset. */
const BAD_BLOCK = /at file (\S+) offset \d+, length \d+ \(requested block: offset=(\d+)/;
/** fio's line for a failed I/O: "fio: io_u error on file SEG.0.0: ...". */
const IO_ERROR = /io_u error on file (\S+?):/;

/** The last lines of fio's stderr, on one line. */
function tail(stderr: string, n = 2): string {
  return [...new Set(stderr.trim().split('\n'))].slice(-n).join(' | ');
}

/** The segments of a run and the fio jobs that write and verify them. */
export class Workload {
  private readonly slots: number;
  private nextSlot = 0;
  /** Live segments by slot. */
  private readonly bySlot = new Map<number, Segment>();
  private seq = 0;

  /** A workload over `opts.volumeBytes` of the gateway's export. */
  constructor(private readonly opts: WorkloadOptions) {
    this.slots = Math.floor(opts.volumeBytes / opts.slotBytes);
    if (this.slots < 2) throw new RangeError(`a ${opts.volumeBytes}-byte volume holds fewer than 2 slots of ${opts.slotBytes} bytes`);
    mkdirSync(opts.stateDir, { recursive: true });
  }

  /** The gateway the workload writes through. */
  get gateway(): GatewayProcess {
    return this.opts.gateway;
  }

  /** Live segments (those a verify pass checks), in the order they were written. */
  get live(): Segment[] {
    return [...this.bySlot.values()].sort((a, b) => a.startedAt - b.startedAt);
  }

  /** A new segment in the next slot (dropping the one that held it), with fio seed `randseed`. */
  private newSegment(round: number, phase: string, randseed: number): Segment {
    const slot = this.nextSlot;
    this.nextSlot = (this.nextSlot + 1) % this.slots;
    this.bySlot.delete(slot);
    return {
      name: `r${round}${phase}${++this.seq}`,
      round,
      slot,
      offset: slot * this.opts.slotBytes,
      size: this.opts.slotBytes,
      randseed,
      incarnation: this.opts.gateway.incarnation,
      startedAt: Date.now(),
      flushed: false,
      complete: false,
      source: 'fio',
      done: [],
    };
  }

  private writeArgs(s: Segment, extra: string[]): string[] {
    return [`--name=${s.name}`, ...COMMON, `--uri=${this.opts.gateway.uri}`, `--offset=${s.offset}`, `--size=${s.size}`, `--randseed=${s.randseed}`,
      `--iodepth=${this.opts.iodepth}`, '--do_verify=0', '--verify_state_save=0',
      `--write_lat_log=${s.name}`, '--log_offset=1', '--disable_slat=1', '--disable_lat=1', ...extra];
  }

  /** The successful writes in fio's clat log of `s` (null when fio left none), removing fio's log files. */
  private fioWrites(s: Segment): Array<[number, number]> | null {
    const dir = this.opts.stateDir;
    const logs = readdirSync(dir).filter((f) => f.startsWith(`${s.name}_`) && f.endsWith('.log'));
    const clat = logs.find((f) => f.startsWith(`${s.name}_clat.`));
    let out: Array<[number, number]> | null = null;
    if (clat) {
      out = [];
      // "msec, clat ns, ddir, bytes, offset[, prio]"; ddir 1 = write.
      for (const line of readFileSync(join(dir, clat), 'utf8').split('\n')) {
        const f = line.split(',').map((x) => Number(x.trim()));
        if (f.length >= 5 && f[2] === 1) out.push([f[4], f[3]]);
      }
    }
    for (const f of logs) rmSync(join(dir, f), { force: true });
    return out;
  }

  /**
   * Keeps `s` for verify passes with its completed writes: fio's own list when fio exited
   * (on its own, on our SIGINT, or on an error), the gateway's acknowledged writes when fio
   * had to be killed. `clean`: fio ended with the gateway that served it still up.
   */
  private keep(s: Segment, r: FioRun, clean: boolean): void {
    const job = r.jobs.find((j) => j.jobname === s.name);
    s.complete = clean && !!job && job.error === 0 && job.write.io_kbytes * 1024 >= s.size;
    const fromFio = r.killed ? null : this.fioWrites(s);
    if (fromFio) {
      s.done = fromFio;
      s.source = 'fio';
    } else {
      s.done = this.ackedWrites(s);
      s.source = 'gateway';
    }
    if (s.done.length) this.bySlot.set(s.slot, s);
  }

  /**
   * Writes one slot in full at full speed and ends with a flush (`--end_fsync=1`); the
   * segment is flushed when fio succeeds.
   * @throws Error with fio's output when fio fails.
   */
  async writeFlushed(round: number, randseed: number): Promise<Segment> {
    await this.opts.gateway.whenUp();
    const s = this.newSegment(round, 'a', randseed);
    const r = await runFio(this.writeArgs(s, ['--fsync=64', '--end_fsync=1']), this.opts.stateDir);
    const ok = r.code === 0 && this.opts.gateway.incarnation === s.incarnation && this.opts.gateway.up;
    this.keep(s, r, ok);
    if (!s.complete) throw new Error(`fio ${s.name} (slot ${s.slot}) failed (exit ${r.code ?? r.signal}): ${tail(r.stderr, 3)}`);
    s.flushed = true;
    return s;
  }

  /** Starts rate-limited background writes (segment after segment) until its stop() is called. */
  background(round: number, seeds: () => number): BackgroundWriter {
    return new BackgroundWriter(this, round, seeds);
  }

  /**
   * Runs one background segment (fio with --fsync=16 and the background rate); see
   * BackgroundWriter. `stopping()` says whether a SIGINT sent through onStart's child was ours.
   */
  async writeBackground(round: number, randseed: number, onStart: (c: ChildProcess) => void, stopping: () => boolean): Promise<{ segment: Segment; run: FioRun; cutShort: boolean }> {
    const gw = this.opts.gateway;
    const s = this.newSegment(round, 'b', randseed);
    let lostAt = 0;
    const r = await runFio(this.writeArgs(s, ['--fsync=16', `--rate=${this.opts.backgroundRate}`]), this.opts.stateDir, onStart, () => {
      if (gw.incarnation === s.incarnation && gw.up) return false;
      lostAt ||= Date.now();
      return Date.now() - lostAt > HUNG_AFTER_MS;
    });
    const cutShort = gw.incarnation !== s.incarnation || !gw.up || r.killed;
    this.keep(s, r, !cutShort && (r.code === 0 || stopping()));
    return { segment: s, run: r, cutShort };
  }

  /** Marks flushed every live segment written through gateway incarnation `incarnation`. */
  markFlushed(incarnation: number): void {
    for (const s of this.bySlot.values()) if (s.incarnation === incarnation) s.flushed = true;
  }

  /** The writes gateway incarnation `s.incarnation` acknowledged inside `s`'s slot since it started: [offset, length]. */
  private ackedWrites(s: Segment): Array<[number, number]> {
    let text = '';
    try {
      text = readFileSync(this.opts.gateway.ackLog(s.incarnation), 'utf8');
    } catch {
      return [];
    }
    const out: Array<[number, number]> = [];
    for (const line of text.split('\n')) {
      const [at, off, len] = line.split(' ').map(Number);
      if (!(len > 0) || at < s.startedAt || off < s.offset || off + len > s.offset + s.size) continue;
      out.push([off, len]);
    }
    return out;
  }

  /**
   * Verify pass over every live segment: batches of up to VERIFY_BATCH segments, each batch
   * one fio process with one read job per segment replaying its completed writes.
   * @returns one verdict per live segment.
   */
  async verifyAll(): Promise<SegmentVerdict[]> {
    const segs = this.live;
    const out: SegmentVerdict[] = [];
    const dir = join(this.opts.stateDir, 'verify');
    for (let i = 0; i < segs.length; i += VERIFY_BATCH) {
      const group = segs.slice(i, i + VERIFY_BATCH);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir);
      const jobs = group.flatMap((s) => {
        const file = `${s.name}.0.0`;
        const log = ['fio version 2 iolog', `${file} add`, `${file} open`, ...s.done.map(([o, l]) => `${file} read ${o} ${l}`), `${file} close`, ''];
        writeFileSync(join(dir, `${s.name}.iolog`), log.join('\n'));
        return [`--name=${s.name}`, `--read_iolog=${s.name}.iolog`];
      });
      const r = await runFio(['--ioengine=nbd', `--uri=${this.opts.gateway.uri}`, '--thread', '--iodepth=8', '--verify=crc32c',
        '--verify_fatal=0', '--continue_on_error=verify', '--output-format=json', ...jobs], dir);
      const bad = new Map<string, Set<string>>();
      const lines = new Map<string, string[]>();
      for (const line of r.stderr.split('\n')) {
        const m = BAD_BLOCK.exec(line) ?? IO_ERROR.exec(line);
        if (!m) continue;
        const seg = m[1].replace(/\.\d+\.\d+$/, '');
        if (m.length > 2) bad.set(seg, (bad.get(seg) ?? new Set<string>()).add(m[2]));
        const l = lines.get(seg) ?? [];
        if (l.length < 3) l.push(line.trim());
        lines.set(seg, l);
      }
      for (const s of group) {
        const job = r.jobs.find((j) => j.jobname === s.name);
        const l = lines.get(s.name) ?? [];
        if (!job) l.push(`fio exited ${r.code ?? r.signal} without a result for ${s.name}: ${tail(r.stderr)}`);
        out.push({ segment: s, badBlocks: bad.get(s.name)?.size ?? 0, checked: job?.read.total_ios ?? 0, lines: l, jobError: job ? job.error : -1 });
      }
    }
    rmSync(dir, { recursive: true, force: true });
    return out;
  }
}

/**
 * Background writes during a fault: segment after segment, each rate-limited with a flush
 * every 16 writes, until stop(). A segment cut short because the gateway was killed is
 * expected: the writer waits for the next gateway and goes on in a new slot. Any other fio
 * failure is an I/O error the host saw, kept in `ioErrors`.
 */
export class BackgroundWriter {
  /** Host-visible I/O errors (fio failures not caused by a gateway kill). */
  readonly ioErrors: string[] = [];
  /** Segments written. */
  readonly segments: Segment[] = [];
  /** Segments whose fio hung on the dead gateway connection and was killed. */
  hung = 0;
  private stopping = false;
  private child: ChildProcess | null = null;
  private readonly loop: Promise<void>;

  /** Starts writing at once. */
  constructor(private readonly w: Workload, private readonly round: number, private readonly seeds: () => number) {
    this.loop = this.run();
  }

  /**
   * Resolves true once the running gateway has acknowledged `n` writes since this call
   * (counted in its acks.log), false after `timeoutMs`: the fault then hits writes in flight.
   */
  async writing(n: number, timeoutMs: number): Promise<boolean> {
    const gw = this.w.gateway;
    const lines = (): number => {
      try {
        const t = readFileSync(gw.ackLog(gw.incarnation), 'utf8');
        let c = 0;
        for (let i = t.indexOf('\n'); i >= 0; i = t.indexOf('\n', i + 1)) c++;
        return c;
      } catch {
        return 0;
      }
    };
    const incarnation = gw.incarnation;
    const base = lines();
    const end = Date.now() + timeoutMs;
    while (Date.now() < end && !this.stopping) {
      if (gw.incarnation !== incarnation) return false;
      if (lines() - base >= n) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  /** One-line account of the background writes, for progress lines. */
  describe(): string {
    const writes = this.segments.reduce((a, s) => a + s.done.length, 0);
    const viaGateway = this.segments.filter((s) => s.source === 'gateway' && s.done.length > 0).length;
    return `bg ${this.segments.length} jobs/${writes} writes${viaGateway ? `, ${viaGateway} listed by gateway acks` : ''}${this.hung ? `, ${this.hung} hung` : ''}`;
  }

  private async run(): Promise<void> {
    const gw = this.w.gateway;
    while (!this.stopping) {
      try {
        await gw.whenUp();
      } catch {
        // A failed gateway start is the fault's to report; wait for the next one.
        if (!this.stopping) await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (this.stopping) break;
      const { segment, run, cutShort } = await this.w.writeBackground(this.round, this.seeds(), (c) => {
        this.child = c;
        if (this.stopping) c.kill('SIGINT');
      }, () => this.stopping);
      this.child = null;
      this.segments.push(segment);
      if (run.killed) this.hung++;
      if (this.stopping || cutShort) continue;
      const job = run.jobs.find((j) => j.jobname === segment.name);
      if (run.code === 0 && job?.error === 0) continue;
      this.ioErrors.push(`fio ${segment.name} failed (exit ${run.code ?? run.signal}, error ${job?.error ?? '?'}): ${tail(run.stderr)}`);
      // Do not spin on a persistent error.
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** Stops the current fio job with SIGINT (it saves its state) and resolves when the writer has ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.child?.kill('SIGINT');
    await this.loop;
  }
}
