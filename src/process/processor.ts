import type { IdleOptions } from "../consume/idle.js";
import type { SubscriptionStatus } from "../consume/status.js";
import type { WindshiftError } from "../errors.js";
import type { OutcomeCounts } from "./outcomes.js";

/** What a processor has done so far. */
export interface ProcessorStats extends OutcomeCounts {
  /** Handlers running now. */
  readonly running: number;
  /** Events waiting for an earlier event with the same `orderBy` key. */
  readonly waiting: number;
}

/**
 * A running processor: it takes events from a consumer, hands each to its
 * handler, and settles it by the outcome. Stop it with {@link Processor.close}
 * or `await using`.
 */
export interface Processor extends AsyncDisposable {
  /** The stream read from. */
  readonly stream: string;
  /** The consumer read through. */
  readonly consumer: string;
  /**
   * Resolves once the processor has stopped, however that happened: with the
   * error that stopped it (say, its consumer was deleted), or `undefined`
   * after `close()`. Never rejects.
   */
  readonly closed: Promise<WindshiftError | undefined>;
  /** A snapshot of what the processor has done so far. */
  readonly stats: ProcessorStats;
  /**
   * Stops taking events and gives back those not started yet, waits up to
   * `closeTimeoutMs` for running handlers to finish and settles their events,
   * then gives back the events of handlers still running. Safe to call more
   * than once; never rejects.
   */
  close(): Promise<void>;
  /**
   * Resolves once the processor is idle: no handler runs, no event waits
   * for its key or in the buffer, every event taken is settled, and the
   * consumer has no event left to deliver and none delivered and unsettled
   * (to any subscriber, a retry waiting for its backoff delay included).
   * Every event published before the call, and any published while it
   * waits, has then been handled and settled. Resolves at once when it is
   * idle already. On the memory engine's test clock, advance the clock while
   * waiting when a retry or redelivery is due.
   *
   * Rejects with `TIMEOUT` after `timeoutMs`, its message (and `details`)
   * saying what was still outstanding; with `ABORTED` when `signal` aborts
   * (the processor carries on); with `CLOSED` when the processor stops
   * first, or was stopped.
   *
   * @example
   * ```ts
   * await events.publish("orders.created", OrderCreatedSchema, order);
   * await processor.idle(); // its handler ran, and the event is acked
   * expect(charged).toEqual([order.orderId]);
   * ```
   */
  idle(options?: IdleOptions): Promise<void>;
  /** What happens to the underlying subscription (see `Subscription.status`). */
  status(): AsyncIterableIterator<SubscriptionStatus>;
}
