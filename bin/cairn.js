#!/usr/bin/env node
// Entry point of the `cairn` CLI. It runs the compiled CLI in dist/ (`npm run build`, which
// `npm ci` and `npm pack` run) while no source file is newer than that build; otherwise (a
// checkout being edited, or no build) it registers tsx and runs the TypeScript sources. Either
// way oclif finds the commands through the package.json next to them (dist/ has its own).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stamp = `${root}dist/BUILD`;

/** True when dist/ was built after the last change to any source file. */
function builtIsCurrent() {
  if (!existsSync(stamp)) return false;
  const built = statSync(stamp).mtimeMs;
  for (const dir of ['src', 'cli', 'placement', 'allocator']) {
    let names;
    try {
      names = readdirSync(`${root}${dir}`, { recursive: true });
    } catch {
      continue; // an installed package ships dist/ only
    }
    for (const name of names) {
      if (name.endsWith('.ts') && statSync(`${root}${dir}/${name}`).mtimeMs > built) return false;
    }
  }
  return true;
}

const { execute } = await import('@oclif/core');
if (process.env.CAIRN_FROM_SOURCE !== '1' && builtIsCurrent()) {
  await execute({ dir: new URL('../dist/package.json', import.meta.url).href });
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await execute({ dir: import.meta.url });
}
