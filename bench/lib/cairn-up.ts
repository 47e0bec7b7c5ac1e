/**
 * `cairn up` as a benchmark target: starts the local cluster (3 nodes, 3 replicas by default,
 * all on this machine) with its NBD export and no NVMe/TCP paths, and stops it again.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');

/**
 * Starts `cairn up --data-dir DATADIR --nbd-port PORT --nvmf-paths 0 EXTRA…` and resolves
 * once it prints its NBD export (the export is `nbd://127.0.0.1:PORT/vol0`). The resolved
 * function stops it with SIGINT and waits for its exit; its `pid` is the `cairn up` process's.
 * @throws Error with its stdout when `cairn up` exits before exporting.
 */
export async function startCairn(dataDir: string, port: number, extra: string[] = []): Promise<(() => Promise<void>) & { pid: number }> {
  const p = spawn(process.execPath, [join(ROOT, 'bin', 'cairn.js'), 'up', '--data-dir', dataDir, '--nbd-port', String(port), '--nvmf-paths', '0', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((res, rej) => {
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('NBD export:')) res();
    });
    p.once('exit', (c) => rej(new Error(`cairn up exited ${c}: ${out}`)));
  });
  const stop = async (): Promise<void> => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGINT');
    await exited;
  };
  return Object.assign(stop, { pid: p.pid! });
}
