/**
 * Running the real client tools (fio, qemu-img, nbdcopy) from tests, with their output
 * captured for failure messages.
 */
import { execFile } from 'node:child_process';

/** Result of a finished command. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args` and resolves with its exit code and output (never rejects on exit ≠ 0). */
export function run(cmd: string, args: string[], timeoutMs = 300000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Whether `cmd` is on PATH. */
export async function have(cmd: string): Promise<boolean> {
  return (await run('sh', ['-c', `command -v ${cmd}`])).code === 0;
}
