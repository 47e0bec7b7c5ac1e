/**
 * The long must-show scenarios kept out of the default `npm test` run (it stays well under
 * 15 minutes on 2 cores): they run with CAIRN_SLOW=1, i.e. `npm run test:recovery` (or
 * `npm run test:slow`), and are reported as skipped otherwise — never silently dropped.
 */
import test from 'ava';

/** True when the slow scenarios run. */
export const SLOW = process.env.CAIRN_SLOW === '1';

/** `test.serial` under CAIRN_SLOW=1, else `test.serial.skip`. */
export const slowSerial = SLOW ? test.serial : test.serial.skip;
