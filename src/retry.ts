import pRetry from "p-retry";
import { abortError } from "./abort.js";
import { validationError } from "./errors.js";
import { describe } from "./names.js";
import { boolean, optionsObject } from "./validate.js";

/**
 * How a failed call is retried: p-retry's own options, passed to it as they are.
 * Delays grow as `minTimeout * factor ** attempt`, capped by `maxTimeout`; no
 * retry starts once `maxRetryTime` has passed since the first attempt.
 */
export interface RetryOptions {
  /** How many retries after the first attempt; `Infinity` leaves the limit to `maxRetryTime`. */
  readonly retries?: number;
  /** The growth factor between delays. */
  readonly factor?: number;
  /** The first delay, in milliseconds. */
  readonly minTimeout?: number;
  /** The longest delay, in milliseconds. */
  readonly maxTimeout?: number;
  /** No retry starts after this many milliseconds in total. */
  readonly maxRetryTime?: number;
  /** Multiply each delay by a random factor between 1 and 2. */
  readonly randomize?: boolean;
}

/**
 * The default for ack, reject and ping: exponential backoff from 10 ms,
 * doubling, giving up after 5 s in total (as windshift-go does).
 */
export const SETTLE_RETRY: Required<RetryOptions> = Object.freeze({
  retries: Number.POSITIVE_INFINITY,
  factor: 2,
  minTimeout: 10,
  maxTimeout: 1_000,
  maxRetryTime: 5_000,
  randomize: false,
});

/**
 * What `publish` uses with `retry: true`: backoff from 20 ms, doubling up to
 * 1 s with jitter, giving up after 20 s (elections took up to 9 s in the fault suite).
 */
export const PUBLISH_RETRY: Required<RetryOptions> = Object.freeze({
  retries: Number.POSITIVE_INFINITY,
  factor: 2,
  minTimeout: 20,
  maxTimeout: 1_000,
  maxRetryTime: 20_000,
  randomize: true,
});

const NUMERIC = ["factor", "minTimeout", "maxTimeout", "maxRetryTime"] as const;
const KNOWN = new Set<string>(["retries", "randomize", ...NUMERIC]);

/**
 * Resolves a `retry` option: `false` turns retrying off (returns `undefined`),
 * `true` or `undefined` picks `defaults` (or `undefined` when `defaults` is), an
 * object is merged over `defaults`.
 */
export function resolveRetry(
  field: string,
  value: unknown,
  defaults: Required<RetryOptions> | undefined,
  fallback: Required<RetryOptions> = SETTLE_RETRY,
): Required<RetryOptions> | undefined {
  if (value === false) return undefined;
  if (value === undefined) return defaults;
  if (value === true) return defaults ?? fallback;
  const given = optionsObject(field, value);
  for (const key of Object.keys(given)) {
    if (!KNOWN.has(key)) throw validationError(`${field}.${key}`, "is not a retry option");
  }
  const retries = given.retries;
  if (retries !== undefined && (typeof retries !== "number" || Number.isNaN(retries) || retries < 0)) {
    throw validationError(`${field}.retries`, `${describe(retries)} is not a number >= 0 (or Infinity)`);
  }
  for (const key of NUMERIC) {
    const v = given[key];
    if (v === undefined) continue;
    const finite = key !== "maxTimeout" && key !== "maxRetryTime";
    if (typeof v !== "number" || Number.isNaN(v) || v < 0 || (finite && !Number.isFinite(v))) {
      throw validationError(`${field}.${key}`, `${describe(v)} is not a number >= 0`);
    }
  }
  boolean(`${field}.randomize`, given.randomize);
  return Object.freeze({ ...(defaults ?? fallback), ...(given as RetryOptions) }) as Required<RetryOptions>;
}

/** What {@link withRetry} needs besides the work. */
export interface RetryControl {
  signal?: AbortSignal | undefined;
  /** Whether this failure may be retried. Default: every failure. */
  shouldRetry?: (error: unknown) => boolean;
  /** Told about each failure that will be retried. */
  onRetry?: (error: unknown, attempt: number) => void;
}

/**
 * Runs `work`, retrying per `options` (no retries when `undefined`). An abort
 * rejects with an `ABORTED` error; otherwise the last failure is rethrown as is.
 */
export async function withRetry<T>(
  work: (attempt: number) => Promise<T>,
  options: Required<RetryOptions> | undefined,
  control: RetryControl = {},
): Promise<T> {
  const { signal } = control;
  if (signal?.aborted) throw abortError(signal);
  if (options === undefined) return work(1);
  try {
    return await pRetry(work, {
      ...options,
      ...(signal === undefined ? {} : { signal }),
      unref: true,
      shouldRetry: ({ error }) => (control.shouldRetry ? control.shouldRetry(error) : true),
      onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
        if (retriesLeft > 0 && (control.shouldRetry?.(error) ?? true)) control.onRetry?.(error, attemptNumber);
      },
    });
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    throw err;
  }
}
