import type { FeedStatus } from "../engines/engine.js";
import type { WindshiftError } from "../errors.js";
import { AsyncQueue } from "../internal/async-queue.js";

/** Something that happened to a subscription, reported by `Subscription.status()`. */
export type SubscriptionStatus =
  | FeedStatus
  /** The consumer is gone (deleted, or expired through its inactive threshold). */
  | {
      /** What happened. */
      readonly type: "consumer-deleted";
    }
  /** The consumer was created again per `onConsumerDeleted: "recreate"`. */
  | {
      /** What happened. */
      readonly type: "consumer-recreated";
      /** The event id the new consumer starts at. */
      readonly fromId: number;
    }
  /** The subscription closed. */
  | {
      /** What happened. */
      readonly type: "closed";
      /** Why, when it ended because of a failure. */
      readonly error?: WindshiftError;
    };

/** How many statuses an unread listener keeps; older ones are dropped. */
const MAX_QUEUED = 256;

/** Fans statuses out to any number of listeners, each an async iterator of its own. */
export class StatusChannel {
  readonly #listeners = new Set<AsyncQueue<SubscriptionStatus>>();
  #ended = false;

  push(status: SubscriptionStatus): void {
    for (const listener of this.#listeners) listener.push(status);
  }

  /** Ends every listener's iteration once it has read what is queued. */
  end(): void {
    this.#ended = true;
    for (const listener of this.#listeners) listener.end();
    this.#listeners.clear();
  }

  /** A new listener; it ends when the channel ends, or when its reader leaves. */
  iterate(): AsyncIterableIterator<SubscriptionStatus> {
    const listener: AsyncQueue<SubscriptionStatus> = new AsyncQueue({
      maxSize: MAX_QUEUED,
      what: "a status iterator",
      onReturn: () => {
        this.#listeners.delete(listener);
      },
    });
    if (this.#ended) listener.end();
    else this.#listeners.add(listener);
    return listener;
  }
}
