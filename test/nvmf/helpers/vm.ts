/**
 * Running guest scripts in the nvme-vm harness (../shared/tools/nvme-vm: Debian's kernel with
 * nvme-tcp, nvme-cli and fio under qemu; the guest reaches the host's 127.0.0.1 at 10.0.2.2),
 * and starting NVMe/TCP gateways (src/gateway/main.ts) as child processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GATEWAY_MAIN } from '../../../src/gateway/index.ts';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
/** The nvme-vm tool directory (NVME_VM_DIR overrides). */
export const NVME_VM_DIR = process.env.NVME_VM_DIR ?? resolve(ROOT, '..', 'shared', 'tools', 'nvme-vm');
const CACHE = process.env.NVME_VM_CACHE ?? '/var/cache/nvme-vm';
/** Guest scripts of these tests. */
export const VM_SCRIPTS = join(ROOT, 'test', 'nvmf', 'vm');
/** The host address as the guest sees it. */
export const GUEST_HOST = '10.0.2.2';

/**
 * Whether the VM tooling is present: run-guest, a kernel + initramfs from its setup, qemu.
 * Returns the reason when it is not.
 */
export function vmMissing(): string | undefined {
  if (!existsSync(join(NVME_VM_DIR, 'run-guest'))) return `no ${join(NVME_VM_DIR, 'run-guest')}`;
  if (!existsSync(join(CACHE, 'vmlinuz')) || !existsSync(join(CACHE, 'initramfs.img'))) return `no guest kernel in ${CACHE} (run ${join(NVME_VM_DIR, 'setup')} as root)`;
  const path = (process.env.PATH ?? '').split(':');
  if (!path.some((d) => existsSync(join(d, 'qemu-system-x86_64')))) return 'qemu-system-x86_64 not installed (nvme-vm setup installs it)';
  return undefined;
}

/** Result of a guest run. */
export interface GuestRun {
  code: number | null;
  output: string;
}

/**
 * Runs `script` in the guest with `args`; `onLine` sees every output line as it arrives.
 * Resolves when run-guest exits (its exit code is the script's; 124 timeout, 125 guest died).
 */
export function runGuest(script: string, args: string[], o: { share?: string; timeoutS?: number; onLine?: (line: string) => void; klog?: string } = {}): Promise<GuestRun> {
  const opts = ['--timeout', String(o.timeoutS ?? 300)];
  if (o.share) opts.push('--share', o.share);
  if (o.klog) opts.push('--klog', o.klog);
  const child = spawn(join(NVME_VM_DIR, 'run-guest'), [script, ...opts, '--', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let partial = '';
  const feed = (d: Buffer): void => {
    const s = d.toString().replace(/\r/g, '');
    output += s;
    partial += s;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) o.onLine?.(l);
  };
  child.stdout.on('data', feed);
  child.stderr.on('data', feed);
  return new Promise((r) => child.once('exit', (code) => r({ code, output })));
}

/** A gateway child process. */
export interface Gateway {
  proc: ChildProcess;
  ready: { nqn: string; pid: number; ports: { portId: number; traddr: string; trsvcid: number }[] };
  stderr: () => string;
  /** Sends a control line (JSON) on stdin. */
  control(m: object): void;
  /** Kills it (default SIGTERM) and resolves when it has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `node src/gateway/main.ts ARGS` (with --verbose) and waits for its ready line. */
export async function startGateway(args: string[], timeoutMs = 30000): Promise<Gateway> {
  const proc = spawn(process.execPath, ['--import', 'tsx', GATEWAY_MAIN, '--verbose', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-20000)));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const ready = await new Promise<Gateway['ready']>((resolveReady, reject) => {
    const t = setTimeout(() => reject(new Error(`gateway not ready in ${timeoutMs} ms: ${err}`)), timeoutMs);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"event":"ready"'));
      if (line) {
        clearTimeout(t);
        resolveReady(JSON.parse(line));
      }
    });
    void exited.then(() => {
      clearTimeout(t);
      reject(new Error(`gateway exited: ${err}`));
    });
  });
  return {
    proc,
    ready,
    stderr: () => err,
    control: (m) => proc.stdin!.write(`${JSON.stringify(m)}\n`),
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}
