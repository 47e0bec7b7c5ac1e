/**
 * One structured log per process: pino, one JSON line per event, written to a file in the
 * data directory's `logs/` (synchronously, so a crash loses nothing already logged), at the
 * level a flag or `CAIRN_LOG_LEVEL` sets (default info). Subsystems log through children
 * (`log.child({ subsystem: 'nbd' })`), connections through children of those. Optionally a
 * readable summary of warnings and errors goes to a terminal as well (`cairn up`).
 */
import { pino, destination, multistream, type Level, type Logger, type StreamEntry } from 'pino';

/** Levels a flag or CAIRN_LOG_LEVEL may name. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** One of LOG_LEVELS. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The level to log at: `flag` if given, else `CAIRN_LOG_LEVEL`, else info.
 * @throws Error naming the accepted levels when the value is not one of them.
 */
export function logLevel(flag?: string): LogLevel {
  const v = (flag ?? process.env.CAIRN_LOG_LEVEL ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new Error(`log level '${v}' is not one of ${LOG_LEVELS.join(', ')}`);
  return v as LogLevel;
}

/** A logger that writes nothing (a default for optional logging). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** Options of fileLogger. */
export interface FileLoggerOptions {
  /** Fields on every line (e.g. `{ node: 2 }`). */
  base?: Record<string, unknown>;
  /** Level of the file (default: logLevel()). */
  level?: LogLevel;
  /** Receives a one-line readable summary of every event at `summaryLevel` or above. */
  summary?: (line: string) => void;
  /** Default warn. */
  summaryLevel?: LogLevel;
}

/** A process's logger and how to close its file. */
export interface FileLog {
  log: Logger;
  /** Flushes and closes the file. */
  close(): void;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

/**
 * A readable line of one pino JSON line: time, level, the subsystem (or node/gateway tag),
 * the message and the other fields as key=value.
 */
export function summaryLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const t = new Date(Number(o.time ?? Date.now())).toISOString().slice(11, 23);
  const who = o.subsystem ?? (o.node !== undefined ? `node${String(o.node)}` : undefined);
  const fields = Object.entries(o).filter(([k]) => !SKIP.has(k) && k !== 'subsystem').map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `${t} ${LEVEL_NAMES[Number(o.level)] ?? String(o.level)}${who ? ` [${String(who)}]` : ''} ${String(o.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}`;
}

/**
 * A pino logger writing JSON lines to `path` (directories created), and a summary to
 * `opts.summary` when given.
 * @throws Error for a bad level (see logLevel).
 */
export function fileLogger(path: string, opts: FileLoggerOptions = {}): FileLog {
  const level = opts.level ?? logLevel();
  const file = destination({ dest: path, sync: true, mkdir: true });
  const streams: StreamEntry[] = [{ level: (level === 'silent' ? 'fatal' : level) as Level, stream: file }];
  if (opts.summary) {
    const out = opts.summary;
    streams.push({ level: (opts.summaryLevel ?? 'warn') as Level, stream: { write: (line: string) => out(summaryLine(line)) } });
  }
  const log = pino({ level, base: opts.base ?? {} }, multistream(streams));
  return {
    log,
    close: () => {
      log.flush();
      file.end();
    },
  };
}
