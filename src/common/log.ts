import { pino, type Logger } from 'pino';

/** JSON logs to stdout; the supervisor redirects each service's stdout into its own log file. */
/** `level` is cfg.logLevel (VORA_LOG_LEVEL) in the services. */
export function createLogger(service: string, level: string): Logger {
  return pino({ name: service, level, base: { service } });
}
export type { Logger };
