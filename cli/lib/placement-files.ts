/**
 * Shared parts of the `cairn placement ...` commands: one-line errors, map loading and
 * rule resolution.
 */
import { readFileSync } from 'node:fs';
import { Command, Flags } from '@oclif/core';
import { compileMap, decodeMap, prepareRule, type CompiledMap, type PreparedRule, type TopologyMap } from '../../placement/index.ts';

/**
 * Base class: any error (bad flag, unreadable file, invalid map, unknown rule) is printed
 * as one line `Error: ...` on stderr and the command exits with status 2.
 */
export abstract class PlacementCommand extends Command {
  override async catch(err: Error & { oclif?: { exit?: number } }): Promise<void> {
    this.parsed = true; // a flag error is reported here; no "did not parse" warning on top
    const text = String(err?.message ?? err)
      .split('\n')
      .map((s) => s.replace(/^\s*›?\s*/, '').trim())
      .filter((s) => s && !s.startsWith('See more help'))
      .join(' ');
    process.stderr.write(`Error: ${text}\n`);
    process.exitCode = err?.oclif?.exit && err.oclif.exit !== 0 ? err.oclif.exit : 2;
  }

  /** Writes one JSON document on one line to stdout. */
  protected printJson(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value)}\n`);
  }
}

/** The --json flag every figure-printing command takes. */
export const jsonFlag = Flags.boolean({ summary: 'Print one JSON object instead of text.', default: false });

/**
 * Reads and verifies an encoded map file (canonical JSON with checksum).
 * @throws Error naming the file and the problem (unreadable, not a map, checksum mismatch).
 */
export function loadMap(file: string): TopologyMap {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return decodeMap(text);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

/** Compiles `map` and prepares rule `rule` (a name or a numeric id) for pool size `size`. */
export function loadRule(map: TopologyMap, rule: string, size: number): { cm: CompiledMap; pr: PreparedRule } {
  const cm = compileMap(map);
  const ref = /^\d+$/.test(rule) ? Number(rule) : rule;
  return { cm, pr: prepareRule(cm, ref, size) };
}
