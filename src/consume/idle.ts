import type { ConsumerState } from "../engines/engine.js";
import { ErrorCode, WindshiftError } from "../errors.js";
import { abortError } from "../internal/abort.js";
import type { TimerHandle } from "../internal/clock.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import * as v from "../internal/validate.js";
import type { Runtime } from "../runtime.js";

/** Options for `idle()` of a subscription or a processor. */
export interface IdleOptions {
  /**
   * How long to wait before rejecting with `TIMEOUT`, on the engine's clock:
   * real time on JetStream, the test clock's time on the memory engine
   * (advance it while waiting). The default stays below the 5 s a test
   * runner such as vitest or Jest gives a test, so that a test that waits in
   * vain fails with this error, which says what was still outstanding,
   * rather than with the runner's. Scripts waiting for a backlog pass more.
   * @default 4_000
   */
  readonly timeoutMs?: number;
  /**
   * Aborting rejects the call with `ABORTED`; the subscription or processor
   * carries on.
   */
  readonly signal?: AbortSignal;
}

/** The defaults of {@link IdleOptions}. */
export const idleDefaults: Defaults<IdleOptions> = Object.freeze({
  timeoutMs: 4_000,
  signal: undefined,
});

/** Validated idle options. */
export interface IdleSettings {
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
}

/** Validates `options` into {@link IdleSettings}. */
export function resolveIdleOptions(options: unknown): IdleSettings {
  const o = mergeOptions<IdleOptions>("options", options, idleDefaults);
  return {
    timeoutMs: v.durationMs("timeoutMs", o.timeoutMs) as number,
    signal: v.signal("signal", o.signal),
  };
}

/** What a subscription or processor still holds in this process. */
export interface LocalWork {
  /** Handlers running (a processor's). */
  readonly running: number;
  /** Events waiting for an earlier event with the same key (a processor's). */
  readonly waiting: number;
  /** Deliveries in the subscription's buffer, not handed out yet. */
  readonly buffered: number;
  /** Ids of the events handed out and not settled, oldest first. */
  readonly unsettledIds: readonly number[];
}

/** What {@link waitForIdle} waits on: a subscription, or a processor over one. */
export interface IdleTarget {
  readonly rt: Runtime;
  readonly stream: string;
  readonly consumer: string;
  /** `"subscription"` or `"processor"`, for messages. */
  readonly kind: string;
  /** What it holds now. */
  work(): LocalWork;
  /** Whether it is closing or closed; then it will never be idle. */
  closing(): boolean;
  /** The failure that ended it, if one did (the `cause` of the `CLOSED` error). */
  failure(): unknown;
  /**
   * Calls `listener` after every change that may leave it idle (an event
   * settled, a handler finished) and when it starts closing; returns the
   * function that removes the listener.
   */
  watch(listener: () => void): () => void;
}

/** A set of change listeners, called in turn; a throwing listener does not stop the others. */
export class Listeners {
  readonly #listeners = new Set<() => void>();

  /** Adds `listener`; returns the function that removes it. */
  add(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  notify(): void {
    if (this.#listeners.size === 0) return;
    for (const listener of [...this.#listeners]) listener();
  }
}

/** The first poll of the consumer's state after local work ran out, and the longest gap between two. */
const FIRST_POLL_MS = 10;
const MAX_POLL_MS = 250;
/** How many unsettled ids a message names. */
const SHOWN_IDS = 5;

/** The consumer's side, as last read: its state, or why it could not be read. */
type EngineView = { readonly state: ConsumerState } | { readonly error: unknown } | undefined;

/**
 * Resolves once `target` is idle: nothing buffered, running, waiting or
 * unsettled in this process, and the consumer with nothing left to deliver
 * and nothing unsettled. Local work is watched (every settlement and every
 * finished handler looks again); the consumer's state is read only when
 * there is no local work, then polled with backoff on the engine's clock
 * until something changes.
 */
export function waitForIdle(target: IdleTarget, options: unknown): Promise<void> {
  let settings: IdleSettings;
  try {
    settings = resolveIdleOptions(options);
  } catch (err) {
    return Promise.reject(err);
  }
  const { timeoutMs, signal } = settings;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  if (target.closing()) return Promise.reject(closedError(target));
  const { clock, engine } = target.rt;
  return new Promise<void>((resolve, reject) => {
    let done = false;
    let reading = false;
    let again = false;
    let delayMs = FIRST_POLL_MS;
    let poll: TimerHandle | undefined;
    let view: EngineView;

    const finish = (error?: unknown): void => {
      if (done) return;
      done = true;
      clock.clearTimeout(deadline);
      if (poll !== undefined) clock.clearTimeout(poll);
      unwatch();
      signal?.removeEventListener("abort", onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = (): void => finish(abortError(signal as AbortSignal));
    const onTimeout = (): void => {
      const work = target.work();
      finish(timeoutError(target, timeoutMs, work, hasWork(work) ? undefined : view));
    };

    /** Looks again; one engine read at a time, and one more look when something changed meanwhile. */
    const check = async (): Promise<void> => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        do {
          again = false;
          if (poll !== undefined) {
            clock.clearTimeout(poll);
            poll = undefined;
          }
          if (target.closing()) {
            finish(closedError(target));
            return;
          }
          // Local work first: while there is some, its end is a change we hear of.
          if (hasWork(target.work())) continue;
          try {
            view = { state: await engine.consumerState(target.stream, target.consumer, signal) };
          } catch (error) {
            view = { error };
          }
          if (done) return;
          if (!again && !hasWork(target.work()) && "state" in view && consumerIdle(view.state)) {
            finish();
            return;
          }
        } while (again && !done);
        if (!done && !hasWork(target.work())) {
          // Only the consumer's side is outstanding (or unknown): it may change
          // without a word to this process, so read it again later.
          poll = clock.setTimeout(() => {
            poll = undefined;
            void check();
          }, delayMs);
          delayMs = Math.min(delayMs * 2, MAX_POLL_MS);
        }
      } finally {
        reading = false;
      }
    };

    const deadline = clock.setTimeout(onTimeout, timeoutMs);
    const unwatch = target.watch(() => {
      if (done) return;
      delayMs = FIRST_POLL_MS;
      void check();
    });
    signal?.addEventListener("abort", onAbort, { once: true });
    void check();
  });
}

function hasWork(work: LocalWork): boolean {
  return work.running > 0 || work.waiting > 0 || work.buffered > 0 || work.unsettledIds.length > 0;
}

/** Nothing left to deliver, and nothing delivered and unsettled (by anyone, redeliveries scheduled included). */
function consumerIdle(state: ConsumerState): boolean {
  return state.pending === 0 && state.unsettled === 0;
}

function closedError(target: IdleTarget): WindshiftError {
  const failure = target.failure();
  return new WindshiftError(
    ErrorCode.Closed,
    `the ${target.kind} of ${target.stream}/${target.consumer} closed before it was idle`,
    failure === undefined ? {} : { cause: failure },
  );
}

function timeoutError(target: IdleTarget, timeoutMs: number, work: LocalWork, view: EngineView): WindshiftError {
  const parts: string[] = [];
  const count = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;
  if (work.running > 0) parts.push(count(work.running, "handler running", "handlers running"));
  if (work.waiting > 0) parts.push(count(work.waiting, "event waiting for its key", "events waiting for their key"));
  if (work.buffered > 0) parts.push(count(work.buffered, "event buffered", "events buffered"));
  const ids = work.unsettledIds;
  if (ids.length > 0) {
    const shown = ids.slice(0, SHOWN_IDS).join(", ") + (ids.length > SHOWN_IDS ? ", …" : "");
    parts.push(
      `${count(ids.length, "event", "events")} handed out and not settled (${ids.length === 1 ? "id" : "ids"} ${shown})`,
    );
  }
  const details: Record<string, unknown> = {
    stream: target.stream,
    consumer: target.consumer,
    timeoutMs,
    running: work.running,
    waiting: work.waiting,
    buffered: work.buffered,
    unsettledIds: ids.slice(0, SHOWN_IDS),
    unsettled: ids.length,
  };
  if (view !== undefined && "state" in view) {
    const { pending, unsettled } = view.state;
    parts.push(
      `the consumer has ${count(pending, "event", "events")} not delivered yet and ${count(unsettled, "event", "events")} delivered and not settled (by any subscriber, redeliveries waiting included)`,
    );
    details.consumerPending = pending;
    details.consumerUnsettled = unsettled;
  } else if (view !== undefined) {
    parts.push(`the consumer's state could not be read (${String(view.error)})`);
  } else if (parts.length === 0) {
    parts.push("the consumer's state was not read yet");
  }
  return new WindshiftError(
    ErrorCode.Timeout,
    `the ${target.kind} of ${target.stream}/${target.consumer} is not idle after ${timeoutMs} ms: ${parts.join("; ")}`,
    { details },
  );
}
