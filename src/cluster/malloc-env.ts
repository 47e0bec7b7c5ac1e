/**
 * glibc malloc settings for Cairn's long-running data-path processes (storage nodes).
 *
 * Node's Buffers and ArrayBuffers come from malloc. Under load a node allocates and frees
 * buffers of 4 KiB to 1 MiB at a high rate (reads, relocation copies, socket frames); by
 * default glibc serves the large ones with mmap and gives the top of its heap back to the
 * kernel whenever more than 128 KiB is free there (M_TRIM_THRESHOLD, raised dynamically). Each
 * such buffer is then fresh memory whose every 4 KiB page faults on first touch. On a VM whose
 * free pages go back to the host (free page reporting, ballooning), that first touch costs
 * ~12 µs per page here: copying 1 MiB into fresh memory ran at ~0.5 GB/s in profiles of a
 * node relocating scattered reads (allocator/relocate.ts), against several GB/s into memory
 * the process already holds.
 *
 * With M_MMAP_THRESHOLD at 32 MiB and M_TRIM_THRESHOLD at 4 GiB (mallopt(3); set through the
 * environment, which glibc reads at start), buffers below 32 MiB come from the heap and freed
 * memory stays with the process for the next buffer: the node's resident size keeps its peak
 * instead of shrinking after a burst, as with any allocator that retains memory.
 * Measured with `probe`-style runs (cairn up + fio nbd, two pairs alternating with and
 * without, set on the nodes only): randread 4 KiB QD32 +11 % IOPS in both pairs; 1 MiB reads
 * over randomly rewritten data, first pass +20 % / +0 %, second pass +16 % / +9 % MB/s. Set on
 * the gateway as well, it showed no further gain, so `cairn up` itself is left as it is.
 */

/** The settings (mallopt(3) names, environment spelling): 32 MiB and 4 GiB. */
export const MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(32 * 1024 * 1024),
  MALLOC_TRIM_THRESHOLD_: String(4 * 1024 * 1024 * 1024),
};

/**
 * `env` with MALLOC_ENV added for a child process; a variable `env` already sets wins, and
 * CAIRN_MALLOC=system leaves `env` as it is (glibc's defaults). Other C libraries ignore them.
 * @throws Error when CAIRN_MALLOC is set to anything but "system" or "retain".
 */
export function withMallocEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const mode = env.CAIRN_MALLOC ?? 'retain';
  if (mode !== 'retain' && mode !== 'system') throw new Error(`CAIRN_MALLOC must be retain or system (got "${mode}")`);
  return mode === 'system' ? env : { ...MALLOC_ENV, ...env };
}
