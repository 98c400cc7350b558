import { ErrorCode, isWindshiftError, WindshiftError } from "./errors.js";

// nats.js error classes are matched by name, so that two loaded copies of
// nats.js (one from the user, one from us) are still recognised.

/** Whether a request failed because nobody listens on the subject. */
export function isNoResponders(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === "NoResponders" || err.name === "JetStreamNotEnabled") return true;
  return err.name === "RequestError" && err.cause instanceof Error && err.cause.name === "NoResponders";
}

/** Whether a request timed out waiting for its reply. */
export function isTimeout(err: unknown): boolean {
  return err instanceof Error && err.name === "TimeoutError";
}

/** Whether the connection is closed or draining. */
export function isClosed(err: unknown): boolean {
  return err instanceof Error && (err.name === "ClosedConnectionError" || err.name === "DrainingConnectionError");
}

/** The JetStream API error code (`err_code`) of a nats.js API error, if it is one. */
export function jsErrorCode(err: unknown): number | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  return err.name.endsWith("NotFoundError") || err.name === "JetStreamApiError"
    ? typeof code === "number"
      ? code
      : undefined
    : undefined;
}

/**
 * Turns whatever a nats.js call threw into a {@link WindshiftError}, saying
 * `what` was being done. Windshift errors pass through unchanged.
 */
export function toWindshiftError(err: unknown, what: string): WindshiftError {
  if (isWindshiftError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (isTimeout(err)) return new WindshiftError(ErrorCode.Timeout, `${what}: timed out`, { cause: err });
  if (isClosed(err)) return new WindshiftError(ErrorCode.Closed, `${what}: the connection is closed`, { cause: err });
  if (err instanceof Error && (err.name === "StreamNotFoundError" || err.name === "ConsumerNotFoundError")) {
    return new WindshiftError(ErrorCode.NotFound, `${what}: ${message}`, {
      cause: err,
      details: { jsErrorCode: jsErrorCode(err) },
    });
  }
  if (isNoResponders(err)) {
    return new WindshiftError(ErrorCode.Server, `${what}: JetStream did not answer (is it enabled?)`, { cause: err });
  }
  const code = jsErrorCode(err);
  return new WindshiftError(ErrorCode.Server, `${what}: ${message}`, {
    cause: err,
    details: code === undefined ? {} : { jsErrorCode: code },
  });
}
