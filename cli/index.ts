/**
 * The oclif command table (explicit strategy): command id -> class. Topic commands use
 * a space separator on the command line ("cairn placement test") and ":" here.
 */
import ExportNvmf from './commands/export/nvmf.ts';
import Up from './commands/up.ts';

/** Every `cairn` command, by id. */
export const COMMANDS = {
  up: Up,
  'export:nvmf': ExportNvmf,
};
