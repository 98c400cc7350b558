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

/** The longest delay Node's `setTimeout` takes; a longer one fires after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A real timer, re-armed in steps when its delay is longer than Node allows. */
interface RealTimer {
  timer: ReturnType<typeof setTimeout>;
}

function arm(handle: RealTimer, callback: () => void, ms: number): void {
  const step = Math.min(ms, MAX_TIMER_MS);
  const timer = setTimeout(() => (ms > step ? arm(handle, callback, ms - step) : callback()), step);
  timer.unref?.();
  handle.timer = timer;
}

/** The real clock: `Date.now()` and unref'd Node timers (of any length). */
export const realClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout(callback: () => void, ms: number): TimerHandle {
    const handle = {} as RealTimer;
    arm(handle, callback, Number.isFinite(ms) && ms > 0 ? ms : 0);
    return handle;
  },
  clearTimeout(handle: TimerHandle): void {
    const timer = (handle as Partial<RealTimer> | undefined)?.timer;
    if (timer !== undefined) clearTimeout(timer);
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

/**
 * Races `work` against a deadline `timeoutMs` away on `clock` and against
 * `signal`: whichever comes first settles the result, with `timedOut()` (read
 * when the deadline passes) or `ABORTED`; `givenUp` is called first in both
 * cases. The timer and the listener are always removed; the work itself is
 * not cancelled, only no longer awaited.
 */
export function raceDeadline<T>(
  work: Promise<T>,
  options: {
    readonly timeoutMs: number;
    readonly signal: AbortSignal | undefined;
    readonly timedOut: () => Error;
    readonly givenUp?: () => void;
    readonly clock?: Clock;
  },
): Promise<T> {
  const { timeoutMs, signal, timedOut, givenUp, clock = realClock } = options;
  return new Promise<T>((resolve, reject) => {
    const end = (): void => {
      clock.clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const giveUp = (error: () => Error): void => {
      end();
      givenUp?.();
      work.catch(() => {});
      reject(error());
    };
    const onAbort = (): void => giveUp(() => abortError(signal as AbortSignal));
    const timer = clock.setTimeout(() => giveUp(timedOut), timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        end();
        resolve(value);
      },
      (err: unknown) => {
        end();
        reject(err);
      },
    );
  });
}

/**
 * Waits for `work`, or `ms` on `clock` at most, whichever comes first;
 * `work`'s failure counts as done. Leaves no timer behind.
 */
export async function waitAtMost(work: Promise<unknown>, ms: number, clock: Clock = realClock): Promise<void> {
  let handle: TimerHandle;
  await Promise.race([
    work.catch(() => {}),
    new Promise<void>((resolve) => {
      handle = clock.setTimeout(resolve, ms);
    }),
  ]);
  clock.clearTimeout(handle);
}
