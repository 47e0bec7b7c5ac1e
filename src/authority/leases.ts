/**
 * The write-lease ledger (DESIGN promise 5): per volume, the last lease generation the
 * authority handed out. Each acquisition takes the next generation and is stored durably
 * (temp file, fsync, rename) before it is returned, so no generation is ever issued twice,
 * even across an authority restart. Acquisitions are applied one at a time.
 */
import { open, readFile, rename } from 'node:fs/promises';

/** Last generation per volume id. */
export type LeaseGenerations = Record<number, number>;

/** A durable, serialized lease-generation counter per volume. */
export class LeaseLedger {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(private readonly path: string, private readonly gens: Map<number, number>) {}

  /**
   * Opens the ledger file at `path` (missing: empty). `floor` gives generations already
   * handed out elsewhere (e.g. recorded in cluster.json by older versions); the ledger
   * never issues one at or below them. A floor above what the file holds is written to the
   * file before this resolves, so the floor need not be given again.
   * @throws Error when the file exists but is not a ledger.
   */
  static async open(path: string, floor: LeaseGenerations = {}): Promise<LeaseLedger> {
    const gens = new Map<number, number>();
    for (const [k, v] of Object.entries(floor)) gens.set(Number(k), v);
    let text: string | null = null;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const stored = new Map<number, number>();
    if (text !== null) {
      const j = JSON.parse(text) as { format?: number; leases?: LeaseGenerations };
      if (j.format !== 1 || typeof j.leases !== 'object' || j.leases === null) throw new Error(`${path} is not a lease ledger`);
      for (const [k, v] of Object.entries(j.leases)) {
        stored.set(Number(k), v);
        gens.set(Number(k), Math.max(gens.get(Number(k)) ?? 0, v));
      }
    }
    // A floor above what the file holds is written now, not at the next acquire: its source
    // (cluster.json's volumes) may be gone by the next start.
    if ([...gens].some(([k, v]) => v > (stored.get(k) ?? 0))) await writeLedger(path, gens);
    return new LeaseLedger(path, gens);
  }

  /** Every volume's last generation. */
  all(): LeaseGenerations {
    return Object.fromEntries(this.gens);
  }

  /**
   * Takes the next generation for `volume`; resolves once it is durable.
   * @throws Error when the ledger cannot be written (nothing is issued).
   */
  acquire(volume: number): Promise<number> {
    const run = async (): Promise<number> => {
      const gen = (this.gens.get(volume) ?? 0) + 1;
      await writeLedger(this.path, new Map(this.gens).set(volume, gen));
      this.gens.set(volume, gen);
      return gen;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }
}

/** Writes `gens` to the ledger file at `path` durably (temp file, fsync, rename). */
async function writeLedger(path: string, gens: Map<number, number>): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify({ format: 1, leases: Object.fromEntries(gens) }));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}
