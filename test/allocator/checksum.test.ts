/**
 * Integrity: bytes flipped in the device file make exactly the reads of the affected
 * pages fail with ChecksumError — before and after a reopen, and after the cleaner has
 * moved the damaged blocks — while every other page reads back intact. A damaged record
 * header costs no data; a damaged superblock refuses to open.
 */
import test from 'ava';
import { Allocator, ChecksumError, FormatError, PAGE } from '../../allocator/index.ts';
import { flip, pageData, rng, tempDevice } from './helpers.ts';

test('flipped bytes fail exactly the affected reads, through reopen and cleaning', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const opts = { path: dev.path, offset: 16 * PAGE, size: 4 * 1024 * 1024, segmentBytes: 32 * 1024 };
  let a = await Allocator.open(opts);
  const KEY = 42;
  const N = 400;
  for (let p = 0; p < N; p += 10) await a.write(KEY, p, Buffer.concat(Array.from({ length: 10 }, (_, i) => pageData(KEY, p + i, 1))), 1);
  // A flush seals the open host record, so key 7's write starts a record of its own.
  await a.flush();
  await a.write(7, 0, pageData(7, 0, 1), 1);
  const rand = rng(5);
  const bad = new Set<number>();
  while (bad.size < 12) bad.add(Math.floor(rand() * N));
  for (const p of bad) flip(dev.path, a.locate(KEY, p)! + Math.floor(rand() * PAGE));
  // A flipped header byte (the block before key 7's page starts its record) loses nothing.
  const hdr = a.locate(7, 0)! - PAGE;
  flip(dev.path, hdr + 200);

  const verify = async (when: string): Promise<void> => {
    for (let p = 0; p < N; p++) {
      if (bad.has(p)) {
        const e = await t.throwsAsync(a.read(KEY, p, 1), { instanceOf: ChecksumError }, `${when}: page ${p}`);
        t.is(e?.code, 'EBADCRC');
        t.is((e as ChecksumError).page, p);
      } else t.true((await a.read(KEY, p, 1)).equals(pageData(KEY, p, 1)), `${when}: page ${p}`);
    }
    // A multi-page read covering a damaged page fails as a whole; one beside it does not.
    const p0 = [...bad][0];
    await t.throwsAsync(a.read(KEY, Math.max(0, p0 - 2), 5), { instanceOf: ChecksumError });
    t.true((await a.read(7, 0, 1)).equals(pageData(7, 0, 1)));
  };
  await verify('while open');
  await a.close();
  a = await Allocator.open(opts);
  await verify('after reopen');

  // Rewrite every other healthy page of KEY (so the damaged blocks sit in segments worth
  // cleaning), then overwrite another key hard so the cleaner moves them around.
  const where = new Map([...bad].map((p) => [p, a.locate(KEY, p)]));
  for (let p = 0; p < N; p += 2) if (!bad.has(p)) await a.write(KEY, p, pageData(KEY, p, 1), 1);
  const before = a.stats().segmentsCleaned;
  const cap = a.stats().capacityBytes / PAGE;
  const filler = Math.floor(cap * 0.85) - N - 1;
  let v = 2;
  for (let i = 0; i < 12 * filler; i++, v++) {
    const p = Math.floor(rand() * filler);
    await a.write(99, p, pageData(99, p, v), v);
  }
  t.true(a.stats().segmentsCleaned - before > 10, 'cleaner ran');
  const moved = [...bad].filter((p) => a.locate(KEY, p) !== where.get(p)).length;
  t.log(`${moved} of ${bad.size} damaged blocks were moved by the cleaner`);
  t.true(moved > 0);
  await verify('after cleaning');
  await a.close();
  a = await Allocator.open(opts);
  await verify('after cleaning and reopen');
  // Rewriting a damaged page heals it.
  const p0 = [...bad][0];
  await a.write(KEY, p0, pageData(KEY, p0, 9), 9);
  t.true((await a.read(KEY, p0, 1)).equals(pageData(KEY, p0, 9)));
  await a.close();
});

test('a damaged superblock is refused with FormatError', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 1024 * 1024 });
  await a.close();
  flip(dev.path, 30);
  const e = await t.throwsAsync(Allocator.open({ path: dev.path, offset: 0, size: 1024 * 1024 }), { instanceOf: FormatError });
  t.regex(e!.message, /checksum/);
});
