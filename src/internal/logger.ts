/**
 * Where windshift reports what it does. `console` fits, as do pino and winston
 * loggers. Each method takes a message and an optional object of fields.
 */
export interface Logger {
  /** Detail for debugging: every retry, every given-back event. */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** What changed: a stream or consumer created or updated, a connection restored. */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Something needs a look but windshift carries on: a dead letter, a lost heartbeat. */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Something failed: an event rejected for good, a processor stopped. */
  error(message: string, fields?: Record<string, unknown>): void;
}

const noop = (): void => {};

/** The default logger: says nothing. */
export const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });
