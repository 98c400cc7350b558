/**
 * Time, as windshift reads it and waits on it. The JetStream engine runs on
 * the real clock; the in-memory engine takes a test clock, so that a test can
 * advance processing timeouts, nak delays, retry backoff and auto-ping
 * instead of waiting for them.
 *
 * @module
 */

import { abortError } from "./abort.js";

/** A handle returned by {@link Clock.setTimeout}; only good for passing to {@link Clock.clearTimeout}. */
export type TimerHandle = unknown;

/**
 * Where windshift reads the time and schedules its timers. Give a test clock
 * (`createTestClock()` from `windshift/testing`) to `createMemoryEvents` to
 * control time in tests.
 */
export interface Clock {
  /** The current time in milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Runs `callback` once, `ms` milliseconds from now. The timer never keeps
   * the process alive on its own.
   */
  setTimeout(callback: () => void, ms: number): TimerHandle;
  /** Cancels a timer; unknown or fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: `Date.now()` and unref'd Node timers. */
export const realClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer = setTimeout(callback, ms);
    timer.unref?.();
    return timer;
  },
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as Parameters<typeof clearTimeout>[0]);
  },
});

/** A repeating timer on a {@link Clock}; `stop()` cancels it. */
export interface Ticker {
  stop(): void;
}

/** Runs `callback` every `ms` milliseconds on `clock` until stopped. */
export function every(clock: Clock, ms: number, callback: () => void): Ticker {
  let stopped = false;
  let handle: TimerHandle;
  const tick = (): void => {
    if (stopped) return;
    handle = clock.setTimeout(tick, ms);
    callback();
  };
  handle = clock.setTimeout(tick, ms);
  return {
    stop() {
      stopped = true;
      clock.clearTimeout(handle);
    },
  };
}

/** Resolves after `ms` on `clock`; rejects with `ABORTED` when `signal` aborts first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise<void>((resolve, reject) => {
    const abort = (): void => {
      clock.clearTimeout(handle);
      reject(abortError(signal as AbortSignal));
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", abort, { once: true });
  });
}
