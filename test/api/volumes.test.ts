/**
 * The volume routes of the management API (src/api/volumes.ts) against one real cluster of
 * three node processes (LocalCluster; every node serves the API, node 0 runs the map
 * authority and so the catalog's changes, the others forward them):
 *
 * - eight concurrent creates of one name, sent to nodes 0, 1 and 2 alike: with eight
 *   different sizes exactly one 201 and seven 409; with eight identical bodies exactly one
 *   201 and seven 200, all with the same id (idempotent create);
 * - bad bodies get a 400 whose message names the field;
 * - no token or a wrong token gets a 401;
 * - GET returns an ETag; PATCH with a stale If-Match gets a 412 and changes nothing, with the
 *   current one a 200 and a new ETag;
 * - 404 for an unknown volume, 409 when deleting a volume that has a snapshot.
 *
 * Statuses and headers are what these tests check, so requests go through `http()` below
 * (fetch, one base URL per node) rather than ApiClient, which returns bodies only.
 */
import test from 'ava';
import { LocalCluster } from '../../src/cluster/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';

const MiB = 1 << 20;

/** A reply as these tests look at it. */
interface Reply {
  status: number;
  etag: string | null;
  body: Record<string, unknown>;
}

let cluster: LocalCluster;
let cleanup: () => void = () => undefined;
let token = '';
/** Management API base URL of node i. */
let urls: string[] = [];

/** One HTTP request to `base` with the cluster token (or `auth`: a header value, null for none). */
async function http(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}, auth: string | null = `Bearer ${token}`): Promise<Reply> {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { ...(auth !== null ? { authorization: auth } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(60000),
  });
  const text = await r.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = { error: text };
  }
  return { status: r.status, etag: r.headers.get('etag'), body: json };
}

test.before(async () => {
  const d = tempDataDir();
  cleanup = d.cleanup;
  cluster = await LocalCluster.start({
    dataDir: d.dir,
    layout: { nodes: 3, devicesPerNode: 1, deviceBytes: 64 * MiB, partitionsPerDevice: 2, replicas: 3, volumeBytes: 0 },
    initiator: false,
    startTimeoutMs: 45000,
  });
  token = cluster.config.token;
  urls = cluster.config.nodes.map((n) => `http://${n.host}:${n.apiPort}`);
  // The catalog serves once its members have peered; wait until every node lists volumes.
  const end = Date.now() + 30000;
  for (;;) {
    const rs = await Promise.all(urls.map((u) => http(u, 'GET', '/v1/volumes').catch(() => null)));
    if (rs.every((r) => r?.status === 200)) break;
    if (Date.now() > end) throw new Error(`the catalog did not serve within 30 s: ${JSON.stringify(rs.map((r) => r && [r.status, r.body.error]))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

test.after.always(async () => {
  await cluster?.stop();
  cleanup();
});

/** Node each of eight concurrent clients talks to: a mix of the authority and the forwarding nodes. */
const NODE_OF = [0, 1, 2, 1, 2, 0, 2, 1];

test.serial('8 concurrent creates of one name with 8 different sizes, through nodes 0, 1 and 2: one 201, seven 409', async (t) => {
  const replies = await Promise.all(NODE_OF.map((n, i) => http(urls[n], 'POST', '/v1/volumes', { name: 'same', size: (i + 1) * MiB })));
  const statuses = replies.map((r) => r.status);
  t.is(statuses.filter((s) => s === 201).length, 1, `statuses: ${statuses.join(', ')}; ${JSON.stringify(replies.map((r) => r.body.error ?? null))}`);
  t.is(statuses.filter((s) => s === 409).length, 7, `statuses: ${statuses.join(', ')}`);
  const winner = replies.findIndex((r) => r.status === 201);
  for (const r of replies.filter((x) => x.status === 409)) t.regex(String(r.body.error), /'same'/, 'the 409 names the volume');
  // The record is the winner's, whichever node is asked.
  for (const u of urls) {
    const g = await http(u, 'GET', '/v1/volumes/same');
    t.is(g.status, 200);
    t.is(g.body.sizeBytes, (winner + 1) * MiB, `node ${u} shows the size of the one create that won`);
    t.is(g.body.id, replies[winner].body.id);
  }
});

test.serial('8 concurrent identical creates through nodes 0, 1 and 2: one 201, seven 200, one id', async (t) => {
  const replies = await Promise.all(NODE_OF.map((n) => http(urls[n], 'POST', '/v1/volumes', { name: 'twin', size: 8 * MiB })));
  const statuses = replies.map((r) => r.status);
  t.is(statuses.filter((s) => s === 201).length, 1, `statuses: ${statuses.join(', ')}; ${JSON.stringify(replies.map((r) => r.body.error ?? null))}`);
  t.is(statuses.filter((s) => s === 200).length, 7, `statuses: ${statuses.join(', ')}`);
  const ids = new Set(replies.map((r) => r.body.id));
  t.is(ids.size, 1, `every reply has the same id: ${[...ids].join(', ')}`);
  t.true(Number.isInteger([...ids][0]) && ([...ids][0] as number) > 0);
  const list = await http(urls[2], 'GET', '/v1/volumes');
  const twins = (list.body.volumes as Array<{ name: string; id: number }>).filter((v) => v.name === 'twin');
  t.deepEqual(twins.map((v) => v.id), [...ids], 'the list holds the volume once, with that id');
});

test.serial('bad bodies: 400 naming the field, nothing created', async (t) => {
  const cases: Array<{ body: unknown; field: RegExp; what: string }> = [
    { body: { name: 'nosize' }, field: /size/, what: 'missing size' },
    { body: { name: 'odd', size: 5000 }, field: /4096|size/, what: 'size not a multiple of 4096' },
    { body: { name: 'a/b', size: 4096 }, field: /name/, what: "name with '/'" },
    { body: { name: 'extra', size: 4096, color: 'blue' }, field: /color/, what: 'unknown property' },
    { body: { name: 'str', size: '4096' }, field: /size/, what: 'size as a string' },
  ];
  for (const [i, c] of cases.entries()) {
    const r = await http(urls[i % 3], 'POST', '/v1/volumes', c.body);
    t.is(r.status, 400, `${c.what}: ${JSON.stringify(r.body)}`);
    t.regex(String(r.body.error), c.field, `${c.what}: the message names the field (${String(r.body.error)})`);
  }
  const list = await http(urls[0], 'GET', '/v1/volumes');
  const names = (list.body.volumes as Array<{ name: string }>).map((v) => v.name);
  for (const n of ['nosize', 'odd', 'a/b', 'extra', 'str']) t.false(names.includes(n), `${n} was not created`);
});

test.serial('no token or a wrong token: 401', async (t) => {
  for (const u of urls) {
    const none = await http(u, 'GET', '/v1/volumes', undefined, {}, null);
    t.is(none.status, 401, `no token at ${u}`);
    t.regex(String(none.body.error), /token/);
    const wrong = await http(u, 'POST', '/v1/volumes', { name: 'intruder', size: 4096 }, {}, `Bearer ${'0'.repeat(token.length)}`);
    t.is(wrong.status, 401, `wrong token at ${u}`);
  }
  t.is((await http(urls[0], 'GET', '/v1/volumes/intruder')).status, 404, 'the unauthenticated create did nothing');
});

test.serial('ETag and If-Match: a stale PATCH gets 412 and changes nothing; the current one 200 and a new ETag', async (t) => {
  t.is((await http(urls[1], 'POST', '/v1/volumes', { name: 'etag', size: 4 * MiB })).status, 201);
  const g = await http(urls[2], 'GET', '/v1/volumes/etag');
  t.is(g.status, 200);
  t.regex(g.etag ?? '', /^"\d+"$/, `GET returns an ETag (${g.etag})`);
  t.is(g.etag, `"${g.body.version}"`, 'the ETag is the record version');
  const stale = `"${Number(g.body.version) - 1}"`;

  for (const n of [0, 1]) {
    const r = await http(urls[n], 'PATCH', '/v1/volumes/etag', { size: 8 * MiB }, { 'if-match': stale });
    t.is(r.status, 412, `stale If-Match through node ${n}: ${JSON.stringify(r.body)}`);
    t.regex(String(r.body.error), /version/);
  }
  const still = await http(urls[1], 'GET', '/v1/volumes/etag');
  t.is(still.body.sizeBytes, 4 * MiB, 'the record is unchanged');
  t.is(still.etag, g.etag, 'and keeps its ETag');

  const ok = await http(urls[2], 'PATCH', '/v1/volumes/etag', { size: 8 * MiB }, { 'if-match': g.etag! });
  t.is(ok.status, 200, JSON.stringify(ok.body));
  t.is(ok.body.sizeBytes, 8 * MiB);
  t.truthy(ok.etag);
  t.not(ok.etag, g.etag, 'a new ETag');
  const after = await http(urls[0], 'GET', '/v1/volumes/etag');
  t.is(after.etag, ok.etag, 'GET returns the ETag the PATCH did');
  t.is(after.body.sizeBytes, 8 * MiB);

  const again = await http(urls[0], 'PATCH', '/v1/volumes/etag', { size: 12 * MiB }, { 'if-match': g.etag! });
  t.is(again.status, 412, 'the ETag from before the PATCH is stale now');
  t.is((await http(urls[0], 'GET', '/v1/volumes/etag')).body.sizeBytes, 8 * MiB);
});

test.serial('404 for an unknown volume; 409 deleting a volume that has a snapshot', async (t) => {
  for (const u of urls) {
    const r = await http(u, 'GET', '/v1/volumes/never-made');
    t.is(r.status, 404);
    t.regex(String(r.body.error), /never-made/);
  }
  t.is((await http(urls[1], 'PATCH', '/v1/volumes/never-made', { size: 8192 })).status, 404);
  t.is((await http(urls[2], 'DELETE', '/v1/volumes/never-made')).status, 404);

  t.is((await http(urls[2], 'POST', '/v1/volumes', { name: 'snapped', size: 4 * MiB })).status, 201);
  const s = await http(urls[1], 'POST', '/v1/volumes/snapped/snapshots', { name: 's1' });
  t.is(s.status, 201, JSON.stringify(s.body));
  t.is(s.body.name, 's1');
  const del = await http(urls[1], 'DELETE', '/v1/volumes/snapped');
  t.is(del.status, 409, JSON.stringify(del.body));
  t.regex(String(del.body.error), /snapshot/);
  t.regex(String(del.body.error), /s1/, 'the refusal names the snapshot');
  const g = await http(urls[0], 'GET', '/v1/volumes/snapped');
  t.is(g.status, 200, 'the volume is still there');
  t.is(g.body.state, 'ready');
  t.deepEqual(g.body.snapshots, ['s1']);
});
