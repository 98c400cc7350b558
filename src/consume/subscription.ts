import type { Message } from "@bufbuild/protobuf";
import type { WindshiftError } from "../errors.js";
import type { Event } from "./event.js";
import type { IdleOptions, Listeners } from "./idle.js";
import type { SubscriptionStatus } from "./status.js";

/**
 * A stream of events from one consumer. Iterate it once with `for await`;
 * leaving the loop (break, return, throw) closes it.
 *
 * @typeParam T - the decoded message type, from `schema`.
 */
export interface Subscription<T extends Message = Message> extends AsyncIterable<Event<T>>, AsyncDisposable {
  /** The stream read from. */
  readonly stream: string;
  /** The consumer read through. */
  readonly consumer: string;
  /** The consumer's processing timeout (ack wait), in milliseconds. */
  readonly processingTimeoutMs: number;
  /**
   * Resolves once the subscription is closed, however that happened: with the
   * error that ended it (its consumer was deleted, say), or `undefined` after
   * `close()`. Never rejects.
   */
  readonly closed: Promise<WindshiftError | undefined>;
  /**
   * Stops fetching, gives back events that were received but not handed out
   * (they are redelivered promptly, in stream order), and ends the iteration. Then it waits up to
   * `closeTimeoutMs` for events already handed out to be settled, and gives
   * back those that are not. Leaves no timers behind. Safe to call more than
   * once; never rejects.
   */
  close(): Promise<void>;
  /**
   * Resolves once the subscription is idle: nothing waits in its buffer,
   * every event it handed out is settled, and the consumer has no event left
   * to deliver and none delivered and unsettled (to any subscriber, a
   * redelivery waiting for its delay included). Resolves at once when it is
   * idle already. For scripts and tests that must know their events were
   * handled; on the memory engine's test clock, advance the clock while
   * waiting when a redelivery or retry is due.
   *
   * Rejects with `TIMEOUT` after `timeoutMs`, its message (and `details`)
   * saying what was still outstanding; with `ABORTED` when `signal` aborts;
   * with `CLOSED` when the subscription closes first, or was closed.
   *
   * @example
   * ```ts
   * await events.publish("orders.created", OrderCreatedSchema, order);
   * await sub.idle({ timeoutMs: 2_000 }); // the loop has acked it
   * ```
   */
  idle(options?: IdleOptions): Promise<void>;
  /**
   * What happens to the subscription: reconnects, missed heartbeats, a
   * deleted or recreated consumer, closing. Each call returns a new iterator
   * that ends when the subscription closes.
   */
  status(): AsyncIterableIterator<SubscriptionStatus>;
}

/** What a processor over a subscription adds to what `idle()` waits on. */
export interface IdleOwner {
  /** `"processor"`, for messages. */
  readonly kind: string;
  /** Handlers running. */
  running(): number;
  /** Events waiting for their key. */
  waiting(): number;
  /** Whether the owner is closing. */
  closing(): boolean;
  /** Told whenever a handler finishes. */
  readonly changes: Listeners;
}
