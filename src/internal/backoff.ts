import { validationError } from "../errors.js";
import { describe } from "./names.js";
import { type Defaults, mergeOptions } from "./options.js";
import { durationMs } from "./validate.js";

/**
 * Delays that grow with each attempt: `initialDelayMs * multiplier ** (n - 1)`
 * for the n-th delay, capped at `maxDelayMs`, then shortened by a random part
 * of up to `jitter` of it, so that work that failed together does not come
 * back together. The one backoff vocabulary of windshift: processor retries
 * (`ProcessOptions.backoff`) and call retries (`RetryOptions`) both speak it.
 */
export interface BackoffOptions {
  /** The first delay, in milliseconds. */
  readonly initialDelayMs?: number;
  /** The longest delay, in milliseconds. */
  readonly maxDelayMs?: number;
  /** The growth factor from one delay to the next (at least 1). */
  readonly multiplier?: number;
  /** The largest share of a delay taken off at random, from 0 (none) to 1. */
  readonly jitter?: number;
}

/** A validated {@link BackoffOptions}, every field set. */
export type Backoff = Required<BackoffOptions>;

/** The options' names, from a constant the compiler holds to the interface. */
const backoffKeys: Defaults<BackoffOptions> = Object.freeze({
  initialDelayMs: undefined,
  maxDelayMs: undefined,
  multiplier: undefined,
  jitter: undefined,
});

/** The n-th delay (n from 1) of `backoff`, with `random` in [0, 1). */
export function backoffDelay(backoff: Backoff, n: number, random: number): number {
  const exponent = Math.max(0, n - 1);
  const full = Math.min(backoff.maxDelayMs, backoff.initialDelayMs * backoff.multiplier ** exponent);
  return Math.round(full * (1 - backoff.jitter * random));
}

/**
 * Validates the backoff fields of `value` (an options object) merged over
 * `defaults`; other keys are the caller's to check.
 */
export function readBackoff(field: string, value: Record<string, unknown>, defaults: Backoff): Backoff {
  const initialDelayMs = durationMs(`${field}.initialDelayMs`, value.initialDelayMs) ?? defaults.initialDelayMs;
  const maxDelayMs = durationMs(`${field}.maxDelayMs`, value.maxDelayMs) ?? defaults.maxDelayMs;
  if (maxDelayMs < initialDelayMs) {
    throw validationError(`${field}.maxDelayMs`, `${maxDelayMs} is less than initialDelayMs (${initialDelayMs})`);
  }
  const multiplier = value.multiplier ?? defaults.multiplier;
  if (typeof multiplier !== "number" || !Number.isFinite(multiplier) || multiplier < 1) {
    throw validationError(`${field}.multiplier`, `${describe(multiplier)} is not a number >= 1`);
  }
  const jitter = value.jitter ?? defaults.jitter;
  if (typeof jitter !== "number" || Number.isNaN(jitter) || jitter < 0 || jitter > 1) {
    throw validationError(`${field}.jitter`, `${describe(jitter)} is not a number from 0 to 1`);
  }
  return { initialDelayMs, maxDelayMs, multiplier, jitter };
}

/** Validates a plain {@link BackoffOptions} object (no other keys) over `defaults`. */
export function resolveBackoffOptions(field: string, value: unknown, defaults: Backoff): Backoff {
  return Object.freeze(readBackoff(field, mergeOptions<BackoffOptions>(field, value, backoffKeys), defaults));
}
