/**
 * src/runtime: whether this process runs Cairn from its TypeScript sources (under tsx) or
 * from the compiled `dist/` (tsc, `npm run build`, which `npm ci` runs through `prepare`), and
 * what that means for the entry files of the child processes it starts (node, gateway,
 * follower): their path (`.ts` or `.js`) and the Node flags they need (`--import tsx` for
 * sources only).
 */

/** True when this module was loaded from a `.ts` file (tsx), false from the compiled `.js`. */
export const FROM_SOURCE = import.meta.url.endsWith('.ts');

/** Extension of Cairn's own modules in this run: `.ts` or `.js`. */
export const MODULE_EXT = FROM_SOURCE ? '.ts' : '.js';

/**
 * Absolute path of entry module `name` (without extension) next to the module at
 * `importMetaUrl`, in this run's form: `entryPath('./main', import.meta.url)`.
 */
export function entryPath(name: string, importMetaUrl: string): string {
  return new URL(`${name}${MODULE_EXT}`, importMetaUrl).pathname;
}

/**
 * Node flags a child process running one of our entry modules needs: from sources, `--import`
 * of tsx resolved from this module (so it works whatever the current directory is).
 */
export function childExecArgv(): string[] {
  return FROM_SOURCE ? ['--import', import.meta.resolve('tsx')] : [];
}
