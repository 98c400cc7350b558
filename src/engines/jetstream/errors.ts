/**
 * The one place nats.js errors are recognised and turned into
 * `WindshiftError`s. nats.js error classes are matched by name, so that two
 * loaded copies of nats.js (one from the user, one from us) are still
 * recognised.
 *
 * @module
 */

import { ErrorCode, isWindshiftError, WindshiftError } from "../../errors.js";
import { consumerNotFound, type EventWanted, eventNotFound, streamNotFound } from "../errors.js";

/** JetStream API error codes (`err_code`) windshift reacts to. */
export const JsErrorCode = {
  StreamNotFound: 10059,
  ConsumerNotFound: 10014,
  NoMessageFound: 10037,
  WrongLastSequence: 10071,
  /** A stream config the server refuses (`max age needs to be >= 100ms`, a storage change, …). */
  InvalidStreamConfig: 10052,
  /** A consumer filter outside the stream's subjects. */
  ConsumerFilterNotSubset: 10093,
  /** Subjects that overlap another stream's. */
  SubjectsOverlap: 10065,
  /** `replicas > 1` on a server that is not clustered. */
  ReplicasNotSupported: 10074,
  /** A stream limit with discard policy new, refusing an event. */
  StreamLimit: 10077,
  /** An event larger than the stream's max message size. */
  MessageTooLarge: 10054,
} as const;

/**
 * What a management call was about, so that a `NOT_FOUND` can name the
 * missing thing and the call that creates it instead of the server's bare
 * "consumer not found".
 */
export interface Target {
  readonly stream: string;
  /** The consumer the call was about. */
  readonly consumer?: string;
  /** The event the call was about. */
  readonly event?: EventWanted;
  /** The call deletes the thing: creating it is no fix. */
  readonly deleting?: boolean;
}

/**
 * The last sequence in the server's `wrong last sequence: 3`; `undefined`
 * when the text says no such thing (another server version's wording).
 */
export function parseLastSequence(description: string): number | undefined {
  const m = /\blast sequence\b\D{0,20}?(\d+)/i.exec(description);
  if (m === null) return undefined;
  const value = Number(m[1]);
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * The `NOT_FOUND` of `target` for a not-found `code`, naming the missing
 * stream or consumer (or event) and the fix; `undefined` when the code is
 * not about the target.
 */
function missing(
  code: number | undefined,
  target: Target | undefined,
  extra: { cause?: unknown; details: Record<string, unknown> },
): WindshiftError | undefined {
  if (target === undefined) return undefined;
  const { stream, consumer, event, deleting = false } = target;
  if (code === JsErrorCode.StreamNotFound) return streamNotFound(stream, { consumer, deleting }, extra);
  if (code === JsErrorCode.ConsumerNotFound && consumer !== undefined) {
    return consumerNotFound(stream, consumer, { deleting }, extra);
  }
  if (code === JsErrorCode.NoMessageFound && event !== undefined) return eventNotFound(stream, event, extra);
  return undefined;
}

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

/** Whether the stream does not exist. */
export function isStreamNotFound(err: unknown): boolean {
  return (
    err instanceof Error && (err.name === "StreamNotFoundError" || jsErrorCode(err) === JsErrorCode.StreamNotFound)
  );
}

/** Whether the consumer (or its stream) does not exist. */
export function isConsumerNotFound(err: unknown): boolean {
  return (
    err instanceof Error &&
    (err.name === "ConsumerNotFoundError" || jsErrorCode(err) === JsErrorCode.ConsumerNotFound || isStreamNotFound(err))
  );
}

/** The JetStream API error code (`err_code`) of a nats.js API error, if it is one. */
export function jsErrorCode(err: unknown): number | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  const api = err.name.endsWith("NotFoundError") || err.name === "JetStreamApiError";
  return api && typeof code === "number" ? code : undefined;
}

/** What the server refused: publishing to a subject, or subscribing to one. */
export interface Denial {
  readonly operation: "publish" | "subscribe";
  readonly subject: string;
}

/**
 * The denial a nats.js error reports, if it is a permission violation (a
 * `PermissionViolationError`, or a `RequestError` caused by one).
 */
export function permissionViolation(err: unknown): Denial | undefined {
  if (!(err instanceof Error)) return undefined;
  const violation = err.name === "PermissionViolationError" ? err : err.cause;
  if (!(violation instanceof Error) || violation.name !== "PermissionViolationError") return undefined;
  const { operation, subject } = violation as { operation?: unknown; subject?: unknown };
  return {
    operation: operation === "subscription" ? "subscribe" : "publish",
    subject: typeof subject === "string" ? subject : "",
  };
}

/**
 * `PERMISSION_DENIED` for `what`, naming the operation and the subject the
 * server refused; `outcome` says what became of the request (nothing stored, say).
 */
export function permissionDenied(what: string, denial: Denial, cause?: unknown, outcome = ""): WindshiftError {
  const { operation, subject } = denial;
  return new WindshiftError(
    ErrorCode.PermissionDenied,
    `${what}: permission denied: the user may not ${operation} to "${subject}"${outcome === "" ? "" : `; ${outcome}`}`,
    { ...(cause === undefined ? {} : { cause }), details: { operation, subject } },
  );
}

/**
 * Turns whatever a nats.js call threw into a {@link WindshiftError}, saying
 * `what` was being done; a missing stream or consumer of `target` is named,
 * with the call that creates it. Windshift errors pass through unchanged.
 */
export function toWindshiftError(err: unknown, what: string, target?: Target): WindshiftError {
  if (isWindshiftError(err)) return err;
  const denial = permissionViolation(err);
  if (denial !== undefined) return permissionDenied(what, denial, err);
  const message = err instanceof Error ? err.message : String(err);
  if (isTimeout(err)) return new WindshiftError(ErrorCode.Timeout, `${what}: timed out`, { cause: err });
  if (isClosed(err)) return new WindshiftError(ErrorCode.Closed, `${what}: the connection is closed`, { cause: err });
  const code = jsErrorCode(err);
  if (code === JsErrorCode.WrongLastSequence) {
    const actual = parseLastSequence(message);
    return new WindshiftError(ErrorCode.WrongSequence, `${what}: ${message}`, {
      cause: err,
      details: actual === undefined ? { jsErrorCode: code } : { jsErrorCode: code, actual },
    });
  }
  if (isConsumerNotFound(err) || code === JsErrorCode.NoMessageFound) {
    const named = missing(
      code ?? (err instanceof Error && err.name === "StreamNotFoundError" ? JsErrorCode.StreamNotFound : undefined),
      target,
      { cause: err, details: code === undefined ? {} : { jsErrorCode: code } },
    );
    if (named !== undefined) return named;
    return new WindshiftError(ErrorCode.NotFound, `${what}: ${message}`, {
      cause: err,
      details: { jsErrorCode: code },
    });
  }
  if (isNoResponders(err)) {
    return new WindshiftError(ErrorCode.Server, `${what}: JetStream did not answer (is it enabled?)`, { cause: err });
  }
  return new WindshiftError(ErrorCode.Server, `${what}: ${message}`, {
    cause: err,
    details: code === undefined ? {} : { jsErrorCode: code },
  });
}

/**
 * An API error answered by JetStream in a reply's `error` field, as a
 * {@link WindshiftError}; a missing stream or consumer of `target` is named,
 * with the call that creates it.
 */
export function apiError(
  what: string,
  error: { code?: number; err_code?: number; description?: string },
  target?: Target,
): WindshiftError {
  const code = error.err_code;
  const description = error.description ?? "unknown error";
  const named = missing(code, target, { details: code === undefined ? {} : { jsErrorCode: code } });
  if (named !== undefined) return named;
  const notFound =
    code === JsErrorCode.StreamNotFound || code === JsErrorCode.ConsumerNotFound || code === JsErrorCode.NoMessageFound;
  return new WindshiftError(
    code === JsErrorCode.WrongLastSequence ? ErrorCode.WrongSequence : notFound ? ErrorCode.NotFound : ErrorCode.Server,
    `${what}: ${description}`,
    { details: code === undefined ? {} : { jsErrorCode: code } },
  );
}
