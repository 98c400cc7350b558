import { validationError } from "./errors.js";
import type { Event } from "./event.js";
import { describe } from "./names.js";
import * as v from "./validate.js";

/**
 * How long a failed event waits before it is delivered again, growing with
 * its delivery attempt: `initialDelayMs * multiplier ** (attempt - 1)`, capped
 * at `maxDelayMs`, then shortened by a random part of up to `jitter` of it so
 * that events that failed together do not come back together.
 */
export interface BackoffOptions {
  /**
   * The delay after the first failed attempt.
   * @default 1_000
   */
  readonly initialDelayMs?: number;
  /**
   * The longest delay.
   * @default 300_000 (5 minutes)
   */
  readonly maxDelayMs?: number;
  /**
   * The growth factor from one attempt to the next.
   * @default 2
   */
  readonly multiplier?: number;
  /**
   * The largest share of a delay taken off at random, from 0 (none) to 1.
   * @default 0.2
   */
  readonly jitter?: number;
}

/**
 * Chooses the delay for a failed event yourself: milliseconds until the next
 * delivery, `0` for the consumer's default, or a negative number to reject
 * the event permanently (it is then dead-lettered, if configured).
 */
export type BackoffDecider = (event: Event, error: unknown) => number;

/** A resolved backoff: computes the delay for a failed delivery, or -1 for "permanent". */
export type Backoff = (event: Event, error: unknown) => number;

const KNOWN = new Set(["initialDelayMs", "maxDelayMs", "multiplier", "jitter"]);

/** Validates a `backoff` option into a {@link Backoff}. */
export function resolveBackoff(value: unknown): Backoff {
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
  const o = v.optionsObject("backoff", value);
  v.rejectUnknown(o, KNOWN, "backoff");
  const initial = v.durationMs("backoff.initialDelayMs", o.initialDelayMs) ?? 1_000;
  const max = v.durationMs("backoff.maxDelayMs", o.maxDelayMs) ?? 300_000;
  if (max < initial) throw validationError("backoff.maxDelayMs", `${max} is less than initialDelayMs (${initial})`);
  const multiplier = o.multiplier ?? 2;
  if (typeof multiplier !== "number" || !Number.isFinite(multiplier) || multiplier < 1) {
    throw validationError("backoff.multiplier", `${describe(multiplier)} is not a number >= 1`);
  }
  const jitter = o.jitter ?? 0.2;
  if (typeof jitter !== "number" || Number.isNaN(jitter) || jitter < 0 || jitter > 1) {
    throw validationError("backoff.jitter", `${describe(jitter)} is not a number from 0 to 1`);
  }
  return (event) => backoffDelay(event.deliveryAttempt, initial, max, multiplier, jitter, Math.random());
}

/** The delay after failed attempt `attempt` (from 1), `random` in [0, 1). */
export function backoffDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  multiplier: number,
  jitter: number,
  random: number,
): number {
  const exponent = Math.max(0, attempt - 1);
  const full = Math.min(maxMs, initialMs * multiplier ** exponent);
  return Math.round(full * (1 - jitter * random));
}
