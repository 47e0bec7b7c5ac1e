/**
 * Benchmark dispatcher: `npm run bench -- NAME [args...]` runs bench/NAME/index.ts, which
 * prints one JSON object on stdout (progress goes to stderr). `npm run bench` alone lists
 * the suites.
 */
import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const suites = readdirSync(here, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(here, d.name, 'index.ts')))
  .map((d) => d.name)
  .sort();
const name = process.argv[2];
if (!name || !suites.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <suite> [args...]\nsuites: ${suites.join(', ') || '(none yet)'}\n`);
  process.exit(name ? 2 : 0);
}
process.argv.splice(2, 1);
await import(join(here, name, 'index.ts'));
