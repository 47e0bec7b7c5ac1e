import { Command, Flags } from '@oclif/core';
import { resolve } from 'node:path';

/**
 * `cairn authority migrate`: moves a stopped cluster's embedded map authority (inside one
 * node) into etcd, so that the cluster survives the loss of any machine. Thin: the work is
 * src/cluster/authority-migrate.ts. Errors are one line on stderr, exit 1.
 */
export default class AuthorityMigrate extends Command {
  static override summary = 'Move the map authority of a stopped cluster from node 0 into etcd.';
  static override description =
    'Copies every signed map epoch and the write-lease ledger of the embedded authority into etcd (under --prefix), ' +
    'puts the authority key into every node\'s directory (with etcd any node may commit an epoch, and one at a time ' +
    'leads membership decisions) and rewrites cluster.json to name the etcd cluster. Stop the cluster first. ' +
    'Epochs and lease generations continue where they were. With --local, a 3-member etcd is started under ' +
    'DATA-DIR/etcd instead (`cairn up` starts it again on later runs).';
  static override examples = [
    '<%= config.bin %> authority migrate --etcd https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379 --ca /etc/etcd/ca.pem',
    '<%= config.bin %> authority migrate --local --data-dir .cairn',
  ];
  static override flags = {
    'data-dir': Flags.string({ summary: 'Data directory holding cluster.json.', default: '.cairn', env: 'CAIRN_DATA_DIR' }),
    etcd: Flags.string({ summary: 'Client URLs of the etcd members, comma-separated.', exactlyOne: ['etcd', 'local'] }),
    local: Flags.boolean({ summary: 'Start a local 3-member etcd under DATA-DIR/etcd and use it.', exactlyOne: ['etcd', 'local'] }),
    prefix: Flags.string({ summary: 'Key prefix of this cluster in etcd (default /cairn/<cluster id>).' }),
    ca: Flags.string({ summary: 'CA bundle (PEM) of the etcd members\' certificates.' }),
    cert: Flags.string({ summary: 'Client certificate (PEM) for mutual TLS.' }),
    key: Flags.string({ summary: 'Client private key (PEM) for mutual TLS.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(AuthorityMigrate);
    const { migrateAuthorityToEtcd } = await import('../../../src/cluster/index.ts');
    const dataDir = resolve(flags['data-dir']);
    const tls = flags.ca || flags.cert || flags.key ? { tls: { ...(flags.ca ? { ca: resolve(flags.ca) } : {}), ...(flags.cert ? { cert: resolve(flags.cert) } : {}), ...(flags.key ? { key: resolve(flags.key) } : {}) } } : {};
    try {
      const r = await migrateAuthorityToEtcd({
        dataDir,
        etcd: flags.local ? 'local' : { endpoints: flags.etcd!.split(',').map((s) => s.trim()).filter(Boolean), ...(flags.prefix ? { prefix: flags.prefix } : {}), ...tls },
        onProgress: (line) => this.log(`  ${line}`),
      });
      this.log(`Map authority of ${dataDir} moved to etcd ${r.endpoints.join(', ')} (prefix ${r.prefix}): ${r.epochs} epochs up to ${r.newestEpoch}, lease generations of ${Object.keys(r.leases).length} volumes.`);
      this.log(`Start the cluster as before (cairn up --data-dir ${flags['data-dir']}); any node may now be lost, the one that led included.`);
    } catch (e) {
      process.stderr.write(`cairn authority migrate: ${(e as Error).message.replace(/\s+/g, ' ').trim()}\n`);
      this.exit(1);
    }
  }
}
