/**
 * The errors the memory engine raises of its own, worded like nats-server's
 * so that a test reads the same message whichever engine ran it; those both
 * engines word alike are in `../errors.ts`.
 *
 * @module
 */

import { ErrorCode, WindshiftError } from "../../errors.js";

/** The engine was closed. */
export function closedError(): WindshiftError {
  return new WindshiftError(
    ErrorCode.Closed,
    "the memory engine is closed (its store or client was closed); create another to go on",
  );
}

/** The call's signal was aborted; its reason is kept as `cause`. */
export function abortedError(signal: AbortSignal): WindshiftError {
  return new WindshiftError(ErrorCode.Aborted, "the operation was aborted", { cause: signal.reason });
}

/** The engine refused the request, as the server would. */
export function refused(message: string, details: Record<string, unknown> = {}): WindshiftError {
  return new WindshiftError(ErrorCode.Server, message, { details });
}

/** Throws when the engine is closed or the signal already aborted (closed first). */
export function checkCall(closed: boolean, signal: AbortSignal | undefined): void {
  if (closed) throw closedError();
  if (signal?.aborted) throw abortedError(signal);
}
