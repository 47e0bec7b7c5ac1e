/** src/logging: one structured log per process (pino JSON lines in the data directory), levels, readable summaries. */
export { LOG_LEVELS, fileLogger, logLevel, silentLogger, summaryLine, type FileLog, type FileLoggerOptions, type LogLevel } from './file-logger.ts';
