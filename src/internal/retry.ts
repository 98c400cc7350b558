import { validationError } from "../errors.js";
import { abortError } from "./abort.js";
import { type BackoffOptions, backoffDelay, readBackoff } from "./backoff.js";
import { type Clock, sleep } from "./clock.js";
import { describe } from "./names.js";
import { type Defaults, mergeOptions } from "./options.js";
import { durationMs } from "./validate.js";

/**
 * How a failed call is retried: delays per {@link BackoffOptions}, until
 * `maxAttempts` attempts were made or `maxElapsedMs` has passed since the
 * first one (no retry starts later, and the last delay is cut to fit).
 */
export interface RetryOptions extends BackoffOptions {
  /** How many attempts in all, the first included; `Infinity` leaves the limit to `maxElapsedMs`. */
  readonly maxAttempts?: number;
  /** No retry starts once this many milliseconds have passed since the first attempt. */
  readonly maxElapsedMs?: number;
}

/** A validated {@link RetryOptions}. */
export type Retry = Required<RetryOptions>;

/**
 * The default for ack, reject and ping: from 10 ms, doubling up to 1 s, no
 * jitter, giving up after 5 s in total (as windshift-go does).
 */
export const SETTLE_RETRY: Retry = Object.freeze({
  initialDelayMs: 10,
  maxDelayMs: 1_000,
  multiplier: 2,
  jitter: 0,
  maxAttempts: Number.POSITIVE_INFINITY,
  maxElapsedMs: 5_000,
});

/**
 * What `publish` uses with `retry: true`: from 20 ms, doubling up to 1 s, up
 * to half of each delay taken off at random, for at most 20 s (stream-leader
 * elections took up to 9 s in the fault suite).
 */
export const PUBLISH_RETRY: Retry = Object.freeze({
  initialDelayMs: 20,
  maxDelayMs: 1_000,
  multiplier: 2,
  jitter: 0.5,
  maxAttempts: Number.POSITIVE_INFINITY,
  maxElapsedMs: 20_000,
});

/** The options' names, from a constant the compiler holds to the interface. */
const retryKeys: Defaults<RetryOptions> = Object.freeze({
  initialDelayMs: undefined,
  maxDelayMs: undefined,
  multiplier: undefined,
  jitter: undefined,
  maxAttempts: undefined,
  maxElapsedMs: undefined,
});

/**
 * Reads a `retry` option: `false` turns retrying off (`undefined`); `true`
 * picks `whenTrue`; `undefined` keeps `current`; an object is merged over
 * `current` (or `whenTrue` when retrying was off).
 */
export function resolveRetry(
  field: string,
  value: unknown,
  current: Retry | undefined,
  whenTrue: Retry = SETTLE_RETRY,
): Retry | undefined {
  if (value === false) return undefined;
  if (value === undefined) return current;
  if (value === true) return current ?? whenTrue;
  const o = mergeOptions<RetryOptions>(field, value, retryKeys);
  const base = current ?? whenTrue;
  const maxAttempts = o.maxAttempts ?? base.maxAttempts;
  if (
    typeof maxAttempts !== "number" ||
    (maxAttempts !== Number.POSITIVE_INFINITY && (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1))
  ) {
    throw validationError(`${field}.maxAttempts`, `${describe(maxAttempts)} is not a whole number >= 1 (or Infinity)`);
  }
  const maxElapsedMs =
    o.maxElapsedMs === Number.POSITIVE_INFINITY
      ? o.maxElapsedMs
      : (durationMs(`${field}.maxElapsedMs`, o.maxElapsedMs) ?? base.maxElapsedMs);
  return Object.freeze({ ...readBackoff(field, o, base), maxAttempts, maxElapsedMs });
}

/** What {@link withRetry} needs besides the work. */
export interface RetryControl {
  /** The clock delays run on. */
  readonly clock: Clock;
  readonly signal?: AbortSignal | undefined;
  /** Whether this failure may be retried. Default: every failure. */
  readonly shouldRetry?: (error: unknown) => boolean;
  /** Told about each failure that will be retried, with the attempt that failed (from 1). */
  readonly onRetry?: (error: unknown, attempt: number) => void;
}

/**
 * Runs `work`, retrying per `retry` (once only when `undefined`). An abort
 * rejects with `ABORTED`; otherwise the last failure is rethrown as it is.
 */
export async function withRetry<T>(
  work: (attempt: number) => Promise<T>,
  retry: Retry | undefined,
  control: RetryControl,
): Promise<T> {
  const { signal } = control;
  if (signal?.aborted) throw abortError(signal);
  const started = control.clock.now();
  try {
    return await work(1);
  } catch (err) {
    return retryAfter(err, { work, retry, started }, control);
  }
}

/** A first attempt that failed: what {@link retryAfter} needs to go on. */
export interface FirstAttempt<T> {
  readonly work: (attempt: number) => Promise<T>;
  readonly retry: Retry | undefined;
  /** When the first attempt started, on the control's clock. */
  readonly started: number;
}

/**
 * Goes on after a first attempt failed with `failure`, as {@link withRetry}
 * would have: for hot paths that make the first attempt themselves, without
 * the retry machinery, and need it only when that attempt fails.
 */
export async function retryAfter<T>(failure: unknown, first: FirstAttempt<T>, control: RetryControl): Promise<T> {
  const { clock, signal } = control;
  const { work, retry, started } = first;
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw abortError(signal);
    if (retry === undefined) throw failure;
    const left = retry.maxElapsedMs - (clock.now() - started);
    if (attempt >= retry.maxAttempts || left <= 0 || !(control.shouldRetry?.(failure) ?? true)) throw failure;
    control.onRetry?.(failure, attempt);
    await sleep(clock, Math.min(backoffDelay(retry, attempt, Math.random()), left), signal);
    try {
      return await work(attempt + 1);
    } catch (err) {
      failure = err;
    }
  }
}
