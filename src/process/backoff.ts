import type { Event } from "../consume/event.js";
import { validationError } from "../errors.js";
import { type Backoff, backoffDelay, resolveBackoffOptions } from "../internal/backoff.js";
import { describe } from "../internal/names.js";
import * as v from "../internal/validate.js";

/**
 * Chooses the delay for a failed event yourself: milliseconds until the next
 * delivery, `0` for the consumer's default, or a negative number to reject
 * the event permanently (it is then dead-lettered, if configured).
 */
export type BackoffDecider = (event: Event, error: unknown) => number;

/** The delay before a failed event's next delivery, or -1 for "give up now". */
export type RetryDelay = (event: Event, error: unknown) => number;

/** A processor's default backoff: from 1 s, doubling up to 5 minutes, up to 20 % jitter. */
export const PROCESS_BACKOFF: Backoff = Object.freeze({
  initialDelayMs: 1_000,
  maxDelayMs: 300_000,
  multiplier: 2,
  jitter: 0.2,
});

/** Validates a processor's `backoff` option (options or a decider) into a {@link RetryDelay}. */
export function resolveProcessBackoff(value: unknown): RetryDelay {
  if (typeof value === "function") {
    const decider = value as BackoffDecider;
    return (event, error) => {
      const decided = decider(event, error);
      if (typeof decided !== "number" || Number.isNaN(decided)) {
        throw validationError("backoff", `returned ${describe(decided)}, not a number of milliseconds`);
      }
      return decided < 0 ? -1 : Math.min(Math.round(decided), v.MAX_DURATION_MS);
    };
  }
  const backoff = resolveBackoffOptions("backoff", value, PROCESS_BACKOFF);
  // The n-th failed delivery waits the n-th delay.
  return (event) => backoffDelay(backoff, event.deliveryAttempt, Math.random());
}
