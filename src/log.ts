import { pino, stdTimeFunctions, type Logger } from 'pino';

/**
 * Secrets a log line must never carry, wherever they appear in what is logged: BMC passwords
 * (a request body, an error's input), bearer tokens in request headers.
 */
export const REDACTED_PATHS = ['password', '*.password', '*.*.password', 'headers.authorization', '*.headers.authorization'];

/**
 * One JSON logger for every server; level from config, pretty-printing left to `pino-pretty` if
 * wanted. Times are ISO 8601 and levels their names, so a line reads without a decoder.
 */
export function createLogger(level: string, name = 'livery', destination?: NodeJS.WritableStream): Logger {
  const options = {
    name,
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
export type { Logger };
