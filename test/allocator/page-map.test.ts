/**
 * Trim floors of the page map (allocator/page-map.ts): page versions of ranges trimmed
 * beyond a key's slots match a naive per-page model through merges, growth of the slots
 * over them, and a checkpoint encode/decode.
 */
import test from 'ava';
import { KeyTable } from '../../allocator/page-map.ts';
import { rng } from './helpers.ts';

test('trim floors match a per-page model through merges, growth and encoding', (t) => {
  const rand = rng(23);
  for (let round = 0; round < 200; round++) {
    let table = new KeyTable(0);
    const span = 400;
    const model = new Array<number>(span).fill(0);
    for (let i = 0; i < 12; i++) {
      const start = Math.max(table.capacity, Math.floor(rand() * span));
      const end = Math.min(span, start + 1 + Math.floor(rand() * 80));
      const v = 1 + Math.floor(rand() * 50);
      table.addFloor(start, end, v);
      for (let p = start; p < end; p++) model[p] = Math.max(model[p], v);
      if (rand() < 0.25) table.ensure(Math.floor(rand() * span)); // slots grow over floors
      if (rand() < 0.25) table = KeyTable.decode(table.encode());
      const f = table.floors ?? [];
      for (let j = 0; j + 3 < f.length; j += 3) t.true(f[j + 1] <= f[j + 3], 'floors sorted and disjoint');
      for (let j = 0; j < f.length; j += 3) t.true(f[j] >= table.capacity, 'floors lie beyond the slots');
    }
    for (let p = 0; p < span; p++) if (table.version(p) !== model[p]) t.fail(`round ${round}: page ${p} has ${table.version(p)}, model ${model[p]}`);
  }
  t.pass();
});
