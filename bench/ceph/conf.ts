/**
 * The ceph.conf of the benchmark's private Ceph cluster (one monitor, one manager, three
 * BlueStore OSDs on sparse files, all on 127.0.0.1), from ../shared/notes/ceph-reference.md.
 * Pure: no I/O.
 */

/** The monitor's fixed addresses: msgr2 on 3300 and msgr1 on 6789 (both must be free). */
export const MON_PORTS = [3300, 6789] as const;
/** The monitor's address vector, as monmaptool and `mon host` take it. */
export const MON_ADDRS = `[v2:127.0.0.1:${MON_PORTS[0]},v1:127.0.0.1:${MON_PORTS[1]}]`;

/** Debug subsystems set to 0/0 (no logging cost on the data path). */
const DEBUG = [
  'asok', 'auth', 'bdev', 'bluefs', 'bluestore', 'buffer', 'client', 'context', 'crush', 'filer', 'finisher',
  'heartbeatmap', 'journaler', 'kstore', 'lockdep', 'mgr', 'mgrc', 'mon', 'monc', 'ms', 'objclass', 'objecter',
  'optracker', 'osd', 'paxos', 'perfcounter', 'prioritycache', 'rados', 'rbd', 'rocksdb', 'throttle', 'timer', 'tp',
];

/** What the conf needs to know: the cluster's private directory and fsid, and the OSDs' device size. */
export interface CephConfOptions {
  /** Absolute path of the private directory holding everything (data, keyrings, sockets, logs). */
  dir: string;
  /** The cluster's fsid (a UUID). */
  fsid: string;
  /** Size of each OSD's sparse block file, bytes (default 4 GiB). */
  osdBlockBytes?: number;
}

/**
 * The text of ceph.conf for the cluster in `o.dir`: cephx on; every path (mon/mgr/osd data,
 * keyrings, admin sockets, logs, pid files, crash dir) inside `o.dir`; replicas spread over
 * OSDs of one host; BlueStore told it is on SSD; the OSD op queue and memory as the
 * reference sets them; no librbd cache; all debug logging off.
 */
export function cephConf(o: CephConfOptions): string {
  const d = o.dir;
  const global: Array<[string, string | number | boolean]> = [
    ['fsid', o.fsid],
    ['mon host', MON_ADDRS],
    ['mon initial members', 'a'],
    ['auth cluster required', 'cephx'],
    ['auth service required', 'cephx'],
    ['auth client required', 'cephx'],
    ['keyring', `${d}/client.admin.keyring`],
    ['run dir', `${d}/run`],
    ['admin socket', `${d}/run/$name.asok`],
    ['pid file', `${d}/run/$name.pid`],
    ['log file', `${d}/log/$name.log`],
    ['mon cluster log file', `${d}/log/cluster.log`],
    ['crash dir', `${d}/crash`],
    ['log to syslog', false],
    ['err to syslog', false],
    ['osd crush chooseleaf type', 0],
    ['osd pool default size', 3],
    ['osd pool default min size', 2],
    ['osd pool default pg autoscale mode', 'off'],
    ['mon allow pool size one', true],
    ['mon warn on pool no redundancy', false],
    ['mon allow pool delete', true],
    ['auth allow insecure global id reclaim', false],
    ...DEBUG.map((s): [string, string] => [`debug ${s}`, '0/0']),
  ];
  const sections: Record<string, Array<[string, string | number | boolean]>> = {
    global,
    mon: [['mon data', `${d}/mon/ceph-$id`], ['keyring', `${d}/mon/ceph-$id/keyring`]],
    mgr: [['mgr data', `${d}/mgr/ceph-$id`], ['keyring', `${d}/mgr/ceph-$id/keyring`]],
    osd: [
      ['osd data', `${d}/osd/ceph-$id`],
      ['keyring', `${d}/osd/ceph-$id/keyring`],
      ['osd objectstore', 'bluestore'],
      ['bluestore block path', `${d}/dev/osd.$id.block`],
      ['bluestore block create', true],
      ['bluestore block size', o.osdBlockBytes ?? 4 * 2 ** 30],
      ['bluestore block db create', false],
      ['bluestore block wal create', false],
      ['bluestore debug enforce settings', 'ssd'],
      ['osd memory target', 1073741824],
      ['osd op num shards', 8],
      ['osd op num threads per shard', 2],
    ],
    client: [
      ['rbd cache', false],
      ['admin socket', `${d}/run/$name.$pid.asok`],
      ['log file', `${d}/log/$name.$pid.log`],
    ],
  };
  return Object.entries(sections)
    .map(([name, kv]) => `[${name}]\n${kv.map(([k, v]) => `  ${k} = ${v}`).join('\n')}\n`)
    .join('\n');
}
