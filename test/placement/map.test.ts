import test from 'ava';
import {
  addHosts,
  buildMap,
  compactMap,
  decodeMap,
  encodeMap,
  generateMap,
  hostBucketId,
  MapValidationError,
  parseWeightSpec,
  partitionLeafId,
  decodePartitionLeafId,
  removeHost,
  setLeafState,
  setLeafWeight,
  validateMap,
  type MapErrorCode,
  type TopologyMap,
} from '../../placement/index.ts';

const small = (): TopologyMap => generateMap({ hosts: 3, devices: 2, partitions: 2 });

function expectCode(t: import('ava').ExecutionContext, mutate: (m: any) => void, code: MapErrorCode, path?: string): void {
  const m: any = structuredClone(small());
  mutate(m);
  const e = t.throws(() => validateMap(m), { instanceOf: MapValidationError });
  t.is(e?.code, code, e?.message);
  if (path !== undefined) t.is(e?.path, path);
}

test('validation rejects each kind of malformed map with its own typed code and path', (t) => {
  t.notThrows(() => validateMap(small()));
  expectCode(t, (m) => (m.format = 2), 'bad-format', 'format');
  expectCode(t, (m) => delete m.format, 'bad-format');
  expectCode(t, (m) => (m.extra = 1), 'bad-field', '');
  expectCode(t, (m) => delete m.leaves[0].up, 'bad-field', 'leaves[0]');
  expectCode(t, (m) => (m.leaves[1].in = 'yes'), 'bad-field', 'leaves[1].in');
  expectCode(t, (m) => (m.epoch = -1), 'bad-field', 'epoch');
  expectCode(t, (m) => (m.buckets[2].id = 5), 'bad-id', 'buckets[2].id');
  expectCode(t, (m) => (m.leaves[0].id = -3), 'bad-id', 'leaves[0].id');
  expectCode(t, (m) => (m.leaves[0].id = 1.5), 'bad-id');
  expectCode(t, (m) => (m.buckets[2].id = m.buckets[1].id), 'duplicate-id', 'buckets[2].id');
  expectCode(t, (m) => (m.leaves[3].id = m.leaves[2].id), 'duplicate-id', 'leaves[3].id');
  expectCode(t, (m) => (m.leaves[3].name = m.buckets[1].name), 'duplicate-name', 'leaves[3]');
  expectCode(t, (m) => (m.leaves[0].weight = -1), 'bad-weight', 'leaves[0].weight');
  expectCode(t, (m) => (m.leaves[0].weight = Infinity), 'bad-weight');
  expectCode(t, (m) => (m.leaves[0].drawWeight = Number.NaN), 'bad-weight', 'leaves[0].drawWeight');
  expectCode(t, (m) => (m.leaves[0].capacityBytes = -5), 'bad-weight');
  expectCode(t, (m) => (m.buckets[1].type = 'shelf'), 'unknown-type', 'buckets[1].type');
  expectCode(t, (m) => m.buckets[1].children.push(99999), 'dangling-reference');
  expectCode(t, (m) => (m.root = -77), 'dangling-reference', 'root');
  // host0 -> its first device -> host0 again: a cycle.
  expectCode(t, (m) => m.buckets.find((b: any) => b.id === -65536).children.push(hostBucketId(0)), 'cycle');
  // A device listed under two hosts.
  expectCode(t, (m) => m.buckets.find((b: any) => b.id === hostBucketId(1)).children.push(-65536), 'shared-child');
  // A bucket nobody lists.
  expectCode(t, (m) => m.buckets.push({ id: -999, name: 'lost', type: 'host', children: [] }), 'unreachable');
  expectCode(t, (m) => (m.buckets[0].children = m.buckets[0].children.slice(1)), 'unreachable');
  expectCode(t, (m) => m.grafts.push({ node: 12345678 }), 'dangling-reference', 'grafts[0].node');
  expectCode(t, (m) => m.grafts.push({ node: -1 }), 'bad-field');
  expectCode(t, (m) => m.grafts.push({ node: hostBucketId(0), extra: 1 }), 'bad-field');
  expectCode(t, (m) => m.grafts.push({ node: 0, extra: 0 }), 'bad-weight');
  expectCode(t, (m) => (m.rules[1].id = 0), 'duplicate-id', 'rules[1].id');
  expectCode(t, (m) => (m.rules[0].steps = [{ op: 'emit' }]), 'bad-rule');
  expectCode(t, (m) => m.rules[0].steps.pop(), 'bad-rule');
  expectCode(t, (m) => (m.rules[0].steps[1].type = 'shelf'), 'unknown-type');
  expectCode(t, (m) => (m.rules[0].steps[0].bucket = 'nowhere'), 'dangling-reference');
  expectCode(t, (m) => (m.rules[0].steps[1].count = 17), 'bad-rule');
  expectCode(t, (m) => (m.rules[0].steps[1].mode = 'some'), 'bad-rule');
  expectCode(t, (m) => (m.rules[0].steps[1] = { op: 'choose', mode: 'firstn', count: 0, type: 'host' }), 'bad-rule');
  const e = t.throws(() => validateMap('nope'), { instanceOf: MapValidationError });
  t.is(e?.code, 'bad-encoding');
});

test('a deep chain of buckets is validated without exhausting the stack', (t) => {
  const m: any = small();
  let parent = m.buckets[0];
  for (let i = 0; i < 50000; i++) {
    const b = { id: -100000 - i, name: `deep${i}`, type: 'rack', children: [] as number[] };
    parent.children.push(b.id);
    m.buckets.push(b);
    parent = b;
  }
  t.notThrows(() => validateMap(m));
  parent.children.push(-100000);
  t.is(t.throws(() => validateMap(m), { instanceOf: MapValidationError })?.code, 'cycle');
});

test('canonical encoding: equal maps encode to equal bytes whatever their order; decode verifies the checksum', (t) => {
  const m = small();
  const text = encodeMap(m);
  t.regex(text, /^\{"format":1,"checksum":"[0-9a-f]{8}","epoch":1,/);
  const shuffled = structuredClone(m);
  shuffled.buckets.reverse();
  shuffled.leaves.reverse();
  shuffled.buckets.forEach((b) => b.children.reverse());
  shuffled.rules.reverse();
  t.is(encodeMap(shuffled), text);
  t.deepEqual(encodeMap(decodeMap(text)), text);
  // Re-indented text still verifies (the checksum covers content, not layout).
  t.is(encodeMap(decodeMap(JSON.stringify(JSON.parse(text), null, 2))), text);
  // Any change of content is caught.
  const tampered = text.replace('"weight":0.5', '"weight":0.75');
  t.not(tampered, text);
  t.is(t.throws(() => decodeMap(tampered), { instanceOf: MapValidationError })?.code, 'checksum');
  t.is(t.throws(() => decodeMap(text.slice(0, -1)), { instanceOf: MapValidationError })?.code, 'bad-encoding');
  t.is(t.throws(() => decodeMap(text.replace(/"checksum":"[0-9a-f]+",/, '')), { instanceOf: MapValidationError })?.code, 'bad-encoding');
  t.is(t.throws(() => decodeMap('[1,2]'), { instanceOf: MapValidationError })?.code, 'bad-encoding');
  t.is(t.throws(() => decodeMap(text.replace('"format":1', '"format":9')), { instanceOf: MapValidationError })?.code, 'bad-format');
  t.is(t.throws(() => decodeMap(new Uint8Array([0xff, 0xfe])), { instanceOf: MapValidationError })?.code, 'bad-encoding');
  t.is(encodeMap(decodeMap(new TextEncoder().encode(text))), text);
});

test('built maps: stable ids, weights from capacity in TiB, device weight override, racks, default rules', (t) => {
  const m = buildMap(
    [
      { id: 7, rack: 2, devices: [{ capacityBytes: 2 ** 41, partitions: 4 }, { capacityBytes: 2 ** 40, partitions: 2, weight: 3 }] },
      { id: 3, devices: [{ capacityBytes: 2 ** 40, partitions: 1 }] },
    ],
    5,
  );
  t.is(m.epoch, 5);
  const leaf = m.leaves.find((l) => l.id === partitionLeafId(7, 0, 3))!;
  t.is(leaf.weight, 0.5);
  t.is(leaf.capacityBytes, 2 ** 39);
  t.is(leaf.drawWeight, 0.5);
  t.is(m.leaves.find((l) => l.id === partitionLeafId(7, 1, 1))!.weight, 1.5);
  t.deepEqual(decodePartitionLeafId(partitionLeafId(7, 1, 1)), { host: 7, device: 1, partition: 1 });
  t.truthy(m.buckets.find((b) => b.name === 'rack2' && b.children.includes(hostBucketId(7))));
  t.true(m.buckets[0].children.includes(hostBucketId(3)));
  t.deepEqual(
    m.rules.map((r) => r.name),
    ['replicated', 'erasure', 'replicated-rack', 'erasure-rack'],
  );
  t.throws(() => buildMap([{ id: 40000, devices: [] }]), { instanceOf: RangeError });
  t.throws(() => buildMap([{ id: 1, devices: [] }, { id: 1, devices: [] }]), { instanceOf: RangeError });
  t.deepEqual(parseWeightSpec('1x2,2.5, 3x1'), [1, 1, 2.5, 3]);
  t.throws(() => parseWeightSpec('1,x'), { instanceOf: RangeError });
  t.throws(() => parseWeightSpec('0'), { instanceOf: RangeError });
});

test('edits: next epoch, additions become grafts, removal and drains keep draw weights, compaction folds', (t) => {
  const m = generateMap({ hosts: 4, devices: 1, partitions: 2, racks: 2 });
  const added = addHosts(m, [{ id: 4, rack: 1, devices: [{ capacityBytes: 2 ** 40, partitions: 2 }] }, { id: 5, rack: 9, devices: [{ capacityBytes: 2 ** 40, partitions: 2 }] }]);
  t.is(added.epoch, 2);
  t.deepEqual(added.grafts, [{ node: hostBucketId(4) }, { node: -(2 + 9) }]);
  t.throws(() => addHosts(added, [{ id: 4, devices: [] }]), { instanceOf: RangeError });
  const removed = removeHost(added, 0);
  const gone = removed.leaves.filter((l) => decodePartitionLeafId(l.id).host === 0);
  t.true(gone.every((l) => l.weight === 0 && !l.in && l.drawWeight > 0));
  const grown = setLeafWeight(removed, partitionLeafId(1, 0, 0), 2);
  t.deepEqual(grown.grafts.at(-1), { node: partitionLeafId(1, 0, 0), extra: 1.5 });
  const grown2 = setLeafWeight(grown, partitionLeafId(1, 0, 0), 3);
  t.is(grown2.grafts.filter((g) => g.extra !== undefined).length, 1);
  t.is(grown2.grafts.at(-1)!.extra, 2.5);
  const drained = setLeafWeight(grown2, partitionLeafId(2, 0, 1), 0.1);
  t.is(drained.leaves.find((l) => l.id === partitionLeafId(2, 0, 1))!.drawWeight, 0.5);
  const down = setLeafState(drained, partitionLeafId(3, 0, 0), { up: false });
  t.false(down.leaves.find((l) => l.id === partitionLeafId(3, 0, 0))!.up);
  t.is(down.epoch, 7);
  const c = compactMap(down);
  t.is(c.epoch, 8);
  t.deepEqual(c.grafts, []);
  t.false(c.leaves.some((l) => decodePartitionLeafId(l.id).host === 0));
  t.false(c.buckets.some((b) => b.id === hostBucketId(0)));
  t.true(c.leaves.every((l) => l.drawWeight === l.weight));
  t.throws(() => setLeafWeight(c, 424242, 1), { instanceOf: RangeError });
  t.throws(() => setLeafWeight(c, partitionLeafId(1, 0, 0), -1), { instanceOf: RangeError });
});
