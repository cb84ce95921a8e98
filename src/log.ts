import { pino, type Logger } from 'pino';

/** One JSON logger for every server; level from config, pretty-printing left to `pino-pretty` if wanted. */
export function createLogger(level: string, name = 'livery'): Logger {
  return pino({ name, level });
}
export type { Logger };
