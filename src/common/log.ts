import { pino, type Logger } from 'pino';

/** JSON logs to stdout; the supervisor redirects each service's stdout into its own log file. */
export function createLogger(service: string, level = process.env.VORA_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name: service, level, base: { service } });
}
export type { Logger };
