/**
 * Write-lease fencing (DESIGN promise 5): per volume, the highest lease generation a node
 * has seen. I/O carrying an older generation is refused; a newer one raises the bar.
 * Kept in memory; a restarted node learns the current generation from the next request.
 */
export class LeaseTable {
  private readonly gens = new Map<number, number>();

  /**
   * Admits I/O for `volume` under lease generation `gen`.
   * @returns 0 when admitted, else the newer generation that fences it.
   */
  admit(volume: number, gen: number): number {
    const cur = this.gens.get(volume) ?? 0;
    if (gen < cur) return cur;
    if (gen > cur) this.gens.set(volume, gen);
    return 0;
  }
}
