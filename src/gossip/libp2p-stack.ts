/**
 * Loads the libp2p stack (libp2p-entry.ts) fast. Cairn runs from its TypeScript sources
 * under tsx, whose module hooks cost a few milliseconds per module; libp2p and its
 * dependencies are ~560 modules, which made every node process spend seconds (10+ on a
 * loaded 2-core machine) just loading them. So the stack is bundled once with esbuild (tsx's
 * own dependency) into node_modules/.cache/cairn/, keyed by the installed package versions,
 * and later loads read one file. The compiled CLI (dist/) loads the bundle `npm run build`
 * made (dist/libp2p.mjs) instead. Set CAIRN_NO_BUNDLE=1 to load the packages directly; any
 * bundling failure falls back to that too.
 */
import './polyfill.ts';
import { FROM_SOURCE } from '../runtime/index.ts';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The stack's exports. */
export type Libp2pStack = typeof import('./libp2p-entry.ts');

const ENTRY = fileURLToPath(new URL('./libp2p-entry.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PACKAGES = ['libp2p', '@libp2p/tcp', '@chainsafe/libp2p-noise', '@chainsafe/libp2p-yamux', '@libp2p/identify', '@libp2p/pnet',
  '@chainsafe/libp2p-gossipsub', '@libp2p/interface', '@multiformats/multiaddr', 'it-length-prefixed-stream', 'esbuild'];

let loading: Promise<Libp2pStack> | null = null;

/** Path of the bundle for the installed versions (it may not exist yet). */
export function bundlePath(): string {
  const h = createHash('sha256').update(readFileSync(ENTRY));
  for (const p of PACKAGES) {
    try {
      h.update(`${p}@${JSON.parse(readFileSync(join(ROOT, 'node_modules', p, 'package.json'), 'utf8')).version}\n`);
    } catch {
      h.update(`${p}@?\n`);
    }
  }
  return join(ROOT, 'node_modules', '.cache', 'cairn', `libp2p-${h.digest('hex').slice(0, 16)}.mjs`);
}

/**
 * Builds the bundle if it is missing (atomically: temp file, then rename). Safe to call from
 * several processes at once. Resolves with its path.
 * @throws Error when esbuild fails.
 */
export async function ensureBundle(): Promise<string> {
  const out = bundlePath();
  if (existsSync(out)) return out;
  const { build } = await import('esbuild');
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await build({
    entryPoints: [ENTRY],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: tmp,
    logLevel: 'silent',
    // Some dependencies call require() for node: built-ins; give the ESM bundle one.
    banner: { js: "import { createRequire as __cairnRequire } from 'node:module'; const require = __cairnRequire(import.meta.url);" },
  });
  renameSync(tmp, out);
  return out;
}

/** The bundle `npm run build` puts in dist/ (compiled runs load it; no esbuild at run time). */
const BUILT_BUNDLE = fileURLToPath(new URL('../../libp2p.mjs', import.meta.url));

/**
 * The libp2p stack: compiled (dist/), from the bundle the build made; from the sources, from
 * the bundle built on first use; failing either, from the packages.
 */
export function loadLibp2pStack(): Promise<Libp2pStack> {
  loading ??= (async () => {
    if (process.env.CAIRN_NO_BUNDLE !== '1' && !FROM_SOURCE && existsSync(BUILT_BUNDLE)) {
      return (await import(pathToFileURL(BUILT_BUNDLE).href)) as Libp2pStack;
    }
    if (process.env.CAIRN_NO_BUNDLE !== '1' && FROM_SOURCE) {
      try {
        return (await import(pathToFileURL(await ensureBundle()).href)) as Libp2pStack;
      } catch (e) {
        process.emitWarning(`cairn: loading the bundled libp2p stack failed (${(e as Error).message}); loading the packages directly`);
      }
    }
    return import('./libp2p-entry.ts');
  })();
  return loading;
}
