/**
 * The oclif command table (explicit strategy): command id -> class. Topic commands use
 * a space separator on the command line ("cairn placement test") and ":" here.
 */
import PlacementBuild from './commands/placement/build.ts';
import PlacementMap from './commands/placement/map.ts';
import PlacementTest from './commands/placement/test.ts';
import Up from './commands/up.ts';

/** Every `cairn` command, by id. */
export const COMMANDS = {
  up: Up,
  'placement:build': PlacementBuild,
  'placement:map': PlacementMap,
  'placement:test': PlacementTest,
};
