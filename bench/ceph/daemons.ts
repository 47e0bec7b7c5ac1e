/**
 * Processes of the benchmark's Ceph cluster: running Ceph's tools, starting daemons in the
 * foreground in their own session (setsid) with their pids recorded under the cluster's
 * directory, and stopping exactly the recorded ones.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Runs Ceph tool `cmd args` with `env` (which carries CEPH_CONF) and resolves with its
 * stdout. `timeoutMs` bounds it (default 60 s).
 * @throws Error naming the command, with its stderr, when it fails or times out.
 */
export function tool(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

/**
 * Starts daemon `cmd args` detached (Node's `detached` is setsid(2): its own session, so a
 * terminal's Ctrl-C reaches only the bench, which then stops it) with stdout and stderr in
 * DIR/log/NAME.out, and records its pid in DIR/pids/NAME.pid. Returns the pid.
 * @throws Error when the process cannot be spawned.
 */
export function startDaemon(dir: string, name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  mkdirSync(join(dir, 'pids'), { recursive: true });
  const out = openSync(join(dir, 'log', `${name}.out`), 'a');
  try {
    const p = spawn(cmd, args, { env, detached: true, stdio: ['ignore', out, out] });
    if (p.pid === undefined) throw new Error(`cannot start ${cmd}`);
    p.on('error', () => {});
    p.unref();
    writeFileSync(join(dir, 'pids', `${name}.pid`), `${p.pid}\n`);
    return p.pid;
  } finally {
    closeSync(out);
  }
}

/** Whether process `pid` is alive and its command line names `marker` (our conf path): so a reused pid is never killed. */
function ours(pid: number, marker: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const state = /^\S+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
    return cmdline.includes(marker) && state !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Whether the daemon recorded as `name` in `dir` is still running.
 */
export function daemonAlive(dir: string, name: string, marker: string): boolean {
  const f = join(dir, 'pids', `${name}.pid`);
  return existsSync(f) && ours(Number(readFileSync(f, 'utf8')), marker);
}

/**
 * Stops the daemons recorded in DIR/pids whose command line names `marker`, in the order
 * of `order` (name prefixes, e.g. osd before mgr before mon; others last): SIGTERM, up to
 * `graceMs` (default 15 s) per group for them to exit, then SIGKILL. Kills nothing else.
 */
export async function stopDaemons(dir: string, marker: string, order: string[], graceMs = 15000): Promise<void> {
  const pidDir = join(dir, 'pids');
  if (!existsSync(pidDir)) return;
  const recorded = readdirSync(pidDir).filter((f) => f.endsWith('.pid')).map((f) => ({ name: f.slice(0, -4), pid: Number(readFileSync(join(pidDir, f), 'utf8')) }));
  const rank = (n: string): number => { const i = order.findIndex((o) => n.startsWith(o)); return i < 0 ? order.length : i; };
  for (let r = 0; r <= order.length; r++) {
    const group = recorded.filter((d) => rank(d.name) === r && ours(d.pid, marker));
    for (const d of group) process.kill(d.pid, 'SIGTERM');
    const t0 = Date.now();
    while (group.some((d) => ours(d.pid, marker)) && Date.now() - t0 < graceMs) await new Promise((res) => setTimeout(res, 100));
    for (const d of group) if (ours(d.pid, marker)) process.kill(d.pid, 'SIGKILL');
  }
}
