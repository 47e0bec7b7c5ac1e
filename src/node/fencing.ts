/**
 * Write-lease fencing (DESIGN promise 5): per volume, the highest lease generation a node
 * has seen. I/O carrying an older generation is refused; a newer one raises the bar. The
 * table is kept in a small file so a restarted node still fences old holders: a raise by a
 * Lease announcement is stored (fsync) before it is acknowledged, a raise seen in ordinary
 * I/O is stored in the background.
 */
import { open, readFile, rename } from 'node:fs/promises';

/** The fence table of one node. */
export class LeaseTable {
  private readonly gens = new Map<number, number>();
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;

  /** @param path file holding the table (none: memory only). */
  constructor(private readonly path?: string) {}

  /**
   * Loads the stored table, if any (a missing or unreadable file leaves it empty: the node
   * then learns generations from the authority and from requests).
   */
  async load(): Promise<void> {
    if (!this.path) return;
    try {
      const j = JSON.parse(await readFile(this.path, 'utf8')) as Record<string, number>;
      for (const [k, v] of Object.entries(j)) if (Number.isInteger(v)) this.gens.set(Number(k), Math.max(v, this.gens.get(Number(k)) ?? 0));
    } catch {
      // nothing stored yet
    }
  }

  /** Current generation of `volume` (0: none seen). */
  current(volume: number): number {
    return this.gens.get(volume) ?? 0;
  }

  /**
   * Admits I/O for `volume` under lease generation `gen`.
   * @returns 0 when admitted, else the newer generation that fences it.
   */
  admit(volume: number, gen: number): number {
    const cur = this.gens.get(volume) ?? 0;
    if (gen < cur) return cur;
    if (gen > cur) {
      this.gens.set(volume, gen);
      void this.save().catch(() => undefined);
    }
    return 0;
  }

  /**
   * Raises `volume` to `gen` (a Lease announcement) and resolves once that is stored.
   * @returns 0 when raised or already there, else the newer generation that fences `gen`.
   */
  async raise(volume: number, gen: number): Promise<number> {
    const fence = this.admit(volume, gen);
    if (fence) return fence;
    await this.save();
    return 0;
  }

  /** Merges generations granted by the authority (never lowers one). */
  merge(gens: Record<number, number>): void {
    for (const [k, v] of Object.entries(gens)) this.admit(Number(k), v);
  }

  /** Writes the table (temp file, fsync, rename); concurrent calls coalesce. */
  private save(): Promise<void> {
    if (!this.path) return Promise.resolve();
    this.dirty = true;
    const path = this.path;
    this.saving = this.saving.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const tmp = `${path}.tmp`;
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(JSON.stringify(Object.fromEntries(this.gens)));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    });
    return this.saving;
  }
}
