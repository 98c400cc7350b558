import type { Appended, OutgoingEvent } from "../engines/engine.js";
import { ErrorCode, isWindshiftError } from "../errors.js";
import { raceAbort } from "../internal/abort.js";
import { type Retry, withRetry } from "../internal/retry.js";
import type { Runtime } from "../runtime.js";

/** How {@link send} stores an event. */
export interface SendOptions {
  readonly timeoutMs: number;
  /** Retries of transient failures; only safe with an idempotency key. */
  readonly retry: Retry | undefined;
  readonly signal: AbortSignal | undefined;
  /** The caller's database transaction (the engine has transactions; never with `retry`). */
  readonly transaction?: object | undefined;
  readonly onRetry?: (err: unknown, attempt: number) => void;
  /**
   * Whether `UNBOUND_SUBJECT` is retried too (a stream may be about to be
   * created); when not, it fails at once.
   * @default true
   */
  readonly retryUnbound?: boolean;
}

/**
 * Stores one ready-made event in the stream that captures its subject,
 * retrying transient failures (`UNAVAILABLE`, `UNBOUND_SUBJECT`,
 * `PUBLISH_TIMEOUT`) per `retry`. Used by `publish`, dead letters and their
 * replay.
 */
export function send(rt: Runtime, event: OutgoingEvent, options: SendOptions): Promise<Appended> {
  const { timeoutMs, signal, transaction } = options;
  const appendOptions = transaction === undefined ? { timeoutMs, signal } : { timeoutMs, signal, transaction };
  // The common case, one attempt that nobody can cancel: straight to the engine.
  if (options.retry === undefined && signal === undefined) return rt.engine.append(event, appendOptions);
  return raceAbort(
    withRetry(() => rt.engine.append(event, appendOptions), options.retry, {
      clock: rt.clock,
      signal,
      shouldRetry: (err) =>
        isTransient(err) || (options.retryUnbound !== false && isWindshiftError(err, ErrorCode.UnboundSubject)),
      onRetry: (err, n) => {
        options.onRetry?.(err, n);
        rt.logger.debug("publish failed, retrying", { subject: event.subject, attempt: n, error: String(err) });
      },
    }),
    signal,
  );
}

/**
 * Whether a failed write may succeed if tried again: the stream had no
 * leader, or its acknowledgement was lost (then only an idempotency key
 * keeps a retry from storing the event twice).
 */
export function isTransient(err: unknown): boolean {
  return isWindshiftError(err, ErrorCode.Unavailable) || isWindshiftError(err, ErrorCode.PublishTimeout);
}
