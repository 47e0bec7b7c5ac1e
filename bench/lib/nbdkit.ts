/**
 * `nbdkit memory` over TCP loopback: an NBD server that does no work, the protocol ceiling
 * that Cairn's NBD export is compared with.
 */
import { spawn } from 'node:child_process';

/**
 * Starts `nbdkit memory SIZE` on 127.0.0.1:`port` (`size` in nbdkit's syntax, e.g. `1G`, or
 * bytes) and resolves once `nbdinfo` can read its size (up to 10 s). The resolved function
 * stops it with SIGTERM and waits for its exit.
 * @throws Error when nbdkit exits early or does not answer within 10 s.
 */
export async function startNbdkit(port: number, size: string | number = '1G'): Promise<() => Promise<void>> {
  const p = spawn('nbdkit', ['-f', '--exit-with-parent', '-i', '127.0.0.1', '-p', String(port), 'memory', String(size)], { stdio: 'inherit' });
  const stop = async (): Promise<void> => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  };
  for (let i = 0; ; i++) {
    if (p.exitCode !== null) throw new Error(`nbdkit exited ${p.exitCode} before serving on port ${port}`);
    const probe = await new Promise<number>((r) => spawn('nbdinfo', ['--size', `nbd://127.0.0.1:${port}`], { stdio: 'ignore' }).once('exit', (c) => r(c ?? 1)));
    if (probe === 0) break;
    if (i >= 100) {
      await stop();
      throw new Error(`nbdkit did not answer on 127.0.0.1:${port} within 10 s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return stop;
}
