/**
 * A clock for tests: time stands still until the test advances it, and
 * timers run on that virtual timeline.
 *
 * @module
 */

import { validationError } from "../errors.js";
import type { Clock, TimerHandle } from "../internal/clock.js";
import { type Defaults, mergeOptions } from "../internal/options.js";

/** Options of {@link createTestClock}. */
export interface TestClockOptions {
  /**
   * The time the clock starts at.
   * @default the real time when the clock is created
   */
  readonly now?: Date | number;
}

/** A {@link Clock} whose time only moves when {@link TestClock.advance} is called. */
export interface TestClock extends Clock {
  /**
   * Moves time forward by `ms` milliseconds, running every timer that falls
   * due on the way, in time order (timers due at the same time in the order
   * they were scheduled), with `now()` set to each timer's due time while it
   * runs.
   *
   * After each timer the clock lets the work it started settle before it
   * looks for the next one: it waits for a few turns of the event loop, so
   * that promise chains (a redelivery reaching a handler, the handler's ack,
   * the retry it schedules) run to their next timer or to their end. Timers
   * scheduled meanwhile run too when they fall within the span, including
   * ones due at once. Work waiting on real I/O (a socket, a file, a real
   * `setTimeout`) is not waited for.
   *
   * Concurrent calls run one after another. `advance(0)` runs what is due
   * now. Rejects with `VALIDATION` when `ms` is negative or not finite, and
   * with the error a timer callback threw (the timers after it stay
   * scheduled).
   */
  advance(ms: number): Promise<void>;
}

/** The defaults of {@link TestClockOptions}. */
const testClockDefaults: Defaults<TestClockOptions> = Object.freeze({
  // Computed: the real time when the clock is created.
  now: undefined,
});

/** Turns of the event loop given to the work a timer started; promise chains settle within one. */
const SETTLE_TURNS = 5;

/** A scheduled timer; also its opaque handle. */
class VirtualTimer {
  readonly due: number;
  readonly order: number;
  readonly callback: () => void;

  constructor(due: number, order: number, callback: () => void) {
    this.due = due;
    this.order = order;
    this.callback = callback;
  }
}

class TestClockImpl implements TestClock {
  #now: number;
  readonly #timers = new Set<VirtualTimer>();
  #order = 0;
  /** The advance in progress; the next one waits for it. */
  #running: Promise<void> = Promise.resolve();

  constructor(start: number) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    // As Node's timers: a delay that is not a positive number (NaN too) means "at once".
    const delay = Number.isNaN(ms) ? 0 : Math.max(ms, 0);
    const timer = new VirtualTimer(this.#now + delay, this.#order++, callback);
    this.#timers.add(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    if (handle instanceof VirtualTimer) this.#timers.delete(handle);
  }

  advance(ms: number): Promise<void> {
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
      return Promise.reject(validationError("ms", `must be a finite number of milliseconds, at least 0 (got ${ms})`));
    }
    const run = this.#running.then(() => this.#advance(ms));
    this.#running = run.catch(() => {});
    return run;
  }

  async #advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (let timer = this.#nextDue(target); timer !== undefined; timer = this.#nextDue(target)) {
      this.#timers.delete(timer);
      this.#now = Math.max(this.#now, timer.due);
      timer.callback();
      await settle();
    }
    this.#now = Math.max(this.#now, target);
    await settle();
  }

  /** The earliest timer due by `target` (ties: the first scheduled). */
  #nextDue(target: number): VirtualTimer | undefined {
    let next: VirtualTimer | undefined;
    for (const timer of this.#timers) {
      if (timer.due > target) continue;
      if (next === undefined || timer.due < next.due || (timer.due === next.due && timer.order < next.order)) {
        next = timer;
      }
    }
    return next;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < SETTLE_TURNS; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function startTime(now: Date | number | undefined): number {
  if (now === undefined) return Date.now();
  const time = now instanceof Date ? now.getTime() : now;
  if (typeof time !== "number" || !Number.isFinite(time)) {
    throw validationError("now", "must be a valid Date or a finite number of milliseconds since the epoch");
  }
  return time;
}

/**
 * Creates a clock for tests. Give it to the in-memory engine (and through it
 * to windshift's own timers: processing timeouts, nak delays, retries,
 * auto-ping), then move time with {@link TestClock.advance} instead of
 * waiting.
 *
 * "Settled" after each timer means a few turns of the event loop: enough for
 * promise chains started by the timer to finish or reach their next timer,
 * not for work waiting on real I/O.
 *
 * @example
 * ```ts
 * import { createTestClock } from "windshift/testing";
 *
 * const clock = createTestClock({ now: new Date("2030-01-01T00:00:00Z") });
 * let fired = false;
 * clock.setTimeout(() => { fired = true; }, 30_000);
 * await clock.advance(29_999); // fired === false
 * await clock.advance(1);      // fired === true; clock.now() is 30 s later
 * ```
 */
export function createTestClock(options?: TestClockOptions): TestClock {
  const o = mergeOptions<TestClockOptions>("options", options, testClockDefaults);
  return new TestClockImpl(startTime(o.now as Date | number | undefined));
}
