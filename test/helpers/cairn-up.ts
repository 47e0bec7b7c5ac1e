/**
 * Runs the real `cairn up` (bin/cairn.js) as a child process on a temporary data directory
 * and hands back its NBD URI. Every test that needs a cluster goes through the main job.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');
/** Path of the CLI entry. */
export const CAIRN = join(ROOT, 'bin', 'cairn.js');

/** A running `cairn up`. */
export interface Up {
  uri: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
  output: () => string;
  /** Sends `signal` and resolves with the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
  /** Process id of storage node `id` (from its pid file). */
  nodePid: (id: number) => number;
}

/** A fresh temporary data directory (removed by cleanup()). */
export function tempDataDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-test-'));
  return { dir, cleanup: () => (process.env.CAIRN_KEEP_TEST_DIRS ? undefined : rmSync(dir, { recursive: true, force: true })) };
}

/**
 * Starts `cairn up --data-dir DIR --nbd-port 0 --nvmf-port 0 [args]` and waits for its "NBD export:" line.
 * @throws Error with the command's output when it exits or takes longer than `timeoutMs`.
 */
export async function cairnUp(dataDir: string, args: string[] = [], timeoutMs = 60000): Promise<Up> {
  const proc = spawn(process.execPath, [CAIRN, 'up', '--data-dir', dataDir, '--nbd-port', '0', '--nvmf-port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const uri = await new Promise<string>((resolveUri, reject) => {
    const t = setTimeout(() => reject(new Error(`cairn up not ready in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const check = (): void => {
      const m = /NBD export: (nbd:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolveUri(m[1]);
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(t);
      reject(new Error(`cairn up exited with ${code}:\n${out}`));
    });
  });
  return {
    uri,
    port: Number(new URL(uri).port),
    dataDir,
    proc,
    output: () => out,
    stop: async (signal = 'SIGINT') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    nodePid: (id) => Number(readFileSync(join(dataDir, 'run', `node${id}.pid`), 'utf8')),
  };
}
