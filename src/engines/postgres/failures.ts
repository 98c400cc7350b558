/**
 * How the PostgreSQL engine reports what the database (or the driver) threw,
 * as `WindshiftError`s with the codes the other engines use: `UNAVAILABLE`
 * when the database cannot answer now, `SERVER` when it refused, and the
 * caller's choice when no answer came back and the outcome is unknown.
 *
 * @module
 */

import { ErrorCode, isWindshiftError, WindshiftError } from "../../errors.js";
import { describe } from "../../internal/names.js";
import { sqlState } from "./database.js";

/** What a failed call was doing, for the message. */
export interface FailedCall {
  /** The call, as the message starts: `publish to "orders.created"`. */
  readonly what: string;
  /** The schema it used, for the fix when the schema is missing. */
  readonly schema: string;
  /**
   * What an error from the server means for the call, which PostgreSQL then
   * rolled back: "the event was not stored".
   */
  readonly rolledBack: string;
  /**
   * The error when the server never answered (the connection dropped, or
   * could not be made): whether anything changed is then unknown, or known
   * not to have happened, as the call knows.
   */
  readonly unanswered: (cause: unknown) => WindshiftError;
}

/** SQLSTATEs meaning the schema or its objects are missing: ensureSchema was not run (or is older). */
const MISSING_SCHEMA = new Set(["3F000", "42P01", "42883"]);

/** Maps what a `pg` call threw to a `WindshiftError` (which is returned as it is). */
export function databaseFailure(err: unknown, call: FailedCall): WindshiftError {
  if (isWindshiftError(err)) return err;
  const state = sqlState(err);
  if (state === undefined) return call.unanswered(err);
  const message = err instanceof Error ? err.message : String(err);
  const details = { sqlState: state };
  if (state.startsWith("08") || state.startsWith("57P") || state.startsWith("53")) {
    return new WindshiftError(
      ErrorCode.Unavailable,
      `${call.what}: PostgreSQL cannot answer now (${message}); ${call.rolledBack}`,
      { cause: err, details },
    );
  }
  if (MISSING_SCHEMA.has(state)) {
    return new WindshiftError(
      ErrorCode.Server,
      `${call.what}: schema ${describe(call.schema)} is missing or not up to date (${message}): run ensureSchema(pool, { schema: ${describe(call.schema)} }) first`,
      { cause: err, details },
    );
  }
  return new WindshiftError(ErrorCode.Server, `${call.what}: PostgreSQL refused it (${message}); ${call.rolledBack}`, {
    cause: err,
    details,
  });
}

/**
 * `UNAVAILABLE` for a call PostgreSQL did not answer (the connection could
 * not be made, or failed); `outcome` says what that means for the call.
 */
export function noAnswer(what: string, outcome: string, cause?: unknown): WindshiftError {
  const why = cause instanceof Error && cause.message !== "" ? ` (${cause.message})` : "";
  return new WindshiftError(
    ErrorCode.Unavailable,
    `${what}: no answer from PostgreSQL${why}; ${outcome}`,
    cause === undefined ? {} : { cause },
  );
}
