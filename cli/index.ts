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
import Status from './commands/status.ts';

/** Every `cairn` command, by id. */
export const COMMANDS = {
  up: Up,
  status: Status,
  'map:show': MapShow,
  'map:history': MapHistory,
  'node:list': NodeList,
  'node:out': NodeOut,
  'node:in': NodeIn,
  'node:reweight': NodeReweight,
  'export:nvmf': ExportNvmf,
  'placement:build': PlacementBuild,
  'placement:map': PlacementMap,
  'placement:test': PlacementTest,
};
