/**
 * Cleanup on exit for benchmarks that start processes and temp dirs: every start registers
 * its undo here, the normal path runs them in reverse order, and SIGINT/SIGTERM run them
 * too before the process exits (130 / 143), so no daemon or directory outlives the bench.
 */

type Undo = () => Promise<void> | void;

const undos: Array<{ what: string; run: () => Promise<void> }> = [];
const aborter = new AbortController();

/**
 * Aborted when cleanup starts (a signal arrived, or `cleanupAll` was called): pass it to
 * fio and to long starts so that they end, and check it before starting anything new.
 */
export const cleanupSignal: AbortSignal = aborter.signal;
let installed = false;
let running: Promise<void> | undefined;

/**
 * Registers `fn` (named `what` in the stderr line when it fails) to run at cleanup and
 * returns a function that runs it now, once, and unregisters it. Installs the SIGINT and
 * SIGTERM handlers on first use.
 */
export function onCleanup(what: string, fn: Undo): () => Promise<void> {
  install();
  let done: Promise<void> | undefined;
  const entry = { what, run: (): Promise<void> => (done ??= Promise.resolve().then(fn)) };
  undos.push(entry);
  return () => {
    const i = undos.indexOf(entry);
    if (i >= 0) undos.splice(i, 1);
    return entry.run();
  };
}

/**
 * Aborts `cleanupSignal`, then runs every registered undo, newest first, and waits for
 * them; a failing undo is reported on stderr and does not stop the others. Safe to call
 * more than once. Call it at the end of the normal path too.
 */
export function cleanupAll(): Promise<void> {
  aborter.abort();
  running ??= (async () => {
    while (undos.length) {
      const { what, run } = undos.pop()!;
      try {
        await run();
      } catch (e) {
        process.stderr.write(`[cleanup] ${what}: ${(e as Error).message}\n`);
      }
    }
  })().finally(() => {
    running = undefined;
  });
  return running;
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(sig, () => {
      process.stderr.write(`[cleanup] ${sig}: stopping everything this bench started\n`);
      void cleanupAll().finally(() => process.exit(code));
    });
  }
}
