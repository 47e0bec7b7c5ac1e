/**
 * The oclif command table (explicit strategy): command id -> class. Topic commands use
 * a space separator on the command line ("cairn map show") and ":" here.
 */
import ExportNvmf from './commands/export/nvmf.ts';
import PlacementBuild from './commands/placement/build.ts';
import PlacementMap from './commands/placement/map.ts';
import PlacementTest from './commands/placement/test.ts';
import Up from './commands/up.ts';
import MapShow from './commands/map/show.ts';
import MapHistory from './commands/map/history.ts';
import NodeList from './commands/node/list.ts';
import NodeOut from './commands/node/out.ts';
import NodeIn from './commands/node/in.ts';
import NodeReweight from './commands/node/reweight.ts';
import NodeAdd from './commands/node/add.ts';
import NodeStart from './commands/node/start.ts';
import Status from './commands/status.ts';
import ScrubStart from './commands/scrub/start.ts';
import ScrubStatus from './commands/scrub/status.ts';
import RecoveryStatus from './commands/recovery/status.ts';
import SetSetting from './commands/set.ts';
import UnsetSetting from './commands/unset.ts';

import VolumeCreate from './commands/volume/create.ts';
import VolumeList from './commands/volume/list.ts';
import VolumeShow from './commands/volume/show.ts';
import VolumeResize from './commands/volume/resize.ts';
import VolumeRename from './commands/volume/rename.ts';
import VolumeDelete from './commands/volume/delete.ts';
import VolumeRollback from './commands/volume/rollback.ts';
import VolumeClone from './commands/volume/clone.ts';
import VolumeFlatten from './commands/volume/flatten.ts';
import VolumeHosts from './commands/volume/hosts.ts';
import SnapshotCreate from './commands/snapshot/create.ts';
import SnapshotList from './commands/snapshot/list.ts';
import SnapshotDelete from './commands/snapshot/delete.ts';
import AuthorityMigrate from './commands/authority/migrate.ts';

/** Every `cairn` command, by id. */
export const COMMANDS = {
  up: Up,
  'authority:migrate': AuthorityMigrate,
  status: Status,
  set: SetSetting,
  unset: UnsetSetting,
  'map:show': MapShow,
  'map:history': MapHistory,
  'node:list': NodeList,
  'node:out': NodeOut,
  'node:in': NodeIn,
  'node:reweight': NodeReweight,
  'node:add': NodeAdd,
  'node:start': NodeStart,
  'scrub:start': ScrubStart,
  'scrub:status': ScrubStatus,
  'recovery:status': RecoveryStatus,
  'volume:create': VolumeCreate,
  'volume:list': VolumeList,
  'volume:show': VolumeShow,
  'volume:resize': VolumeResize,
  'volume:rename': VolumeRename,
  'volume:delete': VolumeDelete,
  'volume:rollback': VolumeRollback,
  'volume:clone': VolumeClone,
  'volume:flatten': VolumeFlatten,
  'volume:hosts': VolumeHosts,
  'snapshot:create': SnapshotCreate,
  'snapshot:list': SnapshotList,
  'snapshot:delete': SnapshotDelete,
  'export:nvmf': ExportNvmf,
  'placement:build': PlacementBuild,
  'placement:map': PlacementMap,
  'placement:test': PlacementTest,
};
