/**
 * The errors the memory engine raises, worded like nats-server's so that a
 * test reads the same message whichever engine ran it.
 *
 * @module
 */

import { ErrorCode, WindshiftError } from "../../errors.js";

/** The engine was closed. */
export function closedError(): WindshiftError {
  return new WindshiftError(ErrorCode.Closed, "the memory engine is closed");
}

/** The call's signal was aborted; its reason is kept as `cause`. */
export function abortedError(signal: AbortSignal): WindshiftError {
  return new WindshiftError(ErrorCode.Aborted, "the operation was aborted", { cause: signal.reason });
}

/** A stream, consumer or event does not exist. */
export function notFound(
  what: "stream" | "consumer" | "event" | "bucket",
  details: Record<string, unknown>,
): WindshiftError {
  return new WindshiftError(ErrorCode.NotFound, `${what} not found`, { details });
}

/** The engine refused the request, as the server would. */
export function refused(message: string, details: Record<string, unknown> = {}): WindshiftError {
  return new WindshiftError(ErrorCode.Server, message, { details });
}

/** An `expected…` check failed; `actual` is what the check should have named. */
export function wrongSequence(subject: string, actual: number): WindshiftError {
  return new WindshiftError(ErrorCode.WrongSequence, `publish to "${subject}": wrong last sequence: ${actual}`, {
    details: { subject },
  });
}

/** Throws when the engine is closed or the signal already aborted (closed first). */
export function checkCall(closed: boolean, signal: AbortSignal | undefined): void {
  if (closed) throw closedError();
  if (signal?.aborted) throw abortedError(signal);
}
