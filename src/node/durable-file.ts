/**
 * Small state files a node must find intact after a crash (peering.json, recovery.json,
 * scrub.json): written to a temporary file, fsync'd, renamed over the old one, and the
 * directory fsync'd, so a reader sees the old contents or the new, never a torn file.
 */
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Stores `value` as JSON at `path` atomically and durably (see the module comment).
 * @throws the fs error of the write, fsync or rename (the directory fsync is best effort).
 */
export async function writeJsonDurably(path: string, value: unknown): Promise<void> {
  const fh = await open(`${path}.tmp`, 'w');
  try {
    await fh.writeFile(JSON.stringify(value));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(`${path}.tmp`, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync().catch(() => undefined);
  } finally {
    await dir.close();
  }
}
