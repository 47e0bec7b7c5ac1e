/**
 * `cairn --help` names each topic with its own line (package.json "oclif.topics"), not the
 * summary of the topic's first command (issue 11, item 9: `map` showed `map history`'s text,
 * `node` and `node in` said "in of data placement").
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const CAIRN = join(resolve(import.meta.dirname, '..', '..'), 'bin', 'cairn.js');
const run = promisify(execFile);

/** Runs `cairn ARGS` and returns its standard output (wide columns, so no line wraps). */
async function cairn(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [CAIRN, ...args], { env: { ...process.env, COLUMNS: '200' }, timeout: 120000 });
  return stdout;
}

/** The lines of the TOPICS section of the root help, as topic -> description. */
function topics(help: string): Map<string, string> {
  const section = help.split(/^TOPICS$/m)[1]?.split(/^\S/m)[0] ?? '';
  const out = new Map<string, string>();
  for (const line of section.split('\n')) {
    const m = /^ {2}(\S+)\s{2,}(.+)$/.exec(line);
    if (m) out.set(m[1], m[2].trim());
  }
  return out;
}

test('root help: each topic has its own description', async (t) => {
  const help = await cairn('--help');
  const tp = topics(help);
  t.is(tp.get('map'), 'Show the cluster map and its history of epochs', help);
  t.is(tp.get('node'), 'Add, start, list, reweight and mark storage nodes in or out', help);
  for (const name of ['export', 'placement', 'recovery', 'scrub']) t.truthy(tp.get(name), `topic ${name} listed:\n${help}`);
  for (const [name, text] of tp) t.false(/\bin of\b/.test(text), `topic ${name}: ${text}`);
  t.not(tp.get('map'), 'List every epoch of the cluster map with its time, checksum and change.');
});

test('topic and command help: node, node in, map', async (t) => {
  const node = await cairn('node', '--help');
  t.true(node.startsWith('Add, start, list, reweight and mark storage nodes in or out'), node);
  t.false(/\bin of\b/.test(node), node);
  const nodeIn = await cairn('node', 'in', '--help');
  t.regex(nodeIn, /^Mark a storage node \(or one device of it\) in: it takes part in data placement again/);
  t.false(/\bin of\b/.test(nodeIn), nodeIn);
  const map = await cairn('map', '--help');
  t.true(map.startsWith('Show the cluster map and its history of epochs'), map);
});
