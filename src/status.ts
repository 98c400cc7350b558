import type { WindshiftError } from "./errors.js";

/** Something that happened to a subscription, reported by `Subscription.status()`. */
export type SubscriptionStatus =
  /** The connection came back; pulling started again. */
  | { readonly type: "reconnected" }
  /** The server went quiet for two heartbeats; the pull was issued again. */
  | { readonly type: "heartbeats-missed" }
  /** The server refused a pull request (e.g. the consumer's max waiting pulls were exceeded). */
  | { readonly type: "pull-refused"; readonly reason: string }
  /** The consumer is gone (deleted, or expired through its inactive threshold). */
  | { readonly type: "consumer-deleted" }
  /** The consumer was created again per `onConsumerDeleted: "recreate"`, starting at this event id. */
  | { readonly type: "consumer-recreated"; readonly fromId: number }
  /** The subscription closed; with `error` when it ended because of a failure. */
  | { readonly type: "closed"; readonly error?: WindshiftError };

/** How many statuses an unread listener keeps; older ones are dropped. */
const MAX_QUEUED = 256;

/** Fans statuses out to any number of async iterators. */
export class StatusChannel {
  readonly #listeners = new Set<{ queue: SubscriptionStatus[]; wake: (() => void) | undefined }>();
  #ended = false;

  push(status: SubscriptionStatus): void {
    for (const l of this.#listeners) {
      if (l.queue.length >= MAX_QUEUED) l.queue.shift();
      l.queue.push(status);
      l.wake?.();
    }
  }

  end(): void {
    this.#ended = true;
    for (const l of this.#listeners) l.wake?.();
  }

  iterate(): AsyncIterableIterator<SubscriptionStatus> {
    const listener = { queue: [] as SubscriptionStatus[], wake: undefined as (() => void) | undefined };
    this.#listeners.add(listener);
    const channel = this;
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next(): Promise<IteratorResult<SubscriptionStatus>> {
        for (;;) {
          const item = listener.queue.shift();
          if (item !== undefined) return { done: false, value: item };
          if (channel.#ended) {
            channel.#listeners.delete(listener);
            return { done: true, value: undefined };
          }
          await new Promise<void>((resolve) => {
            listener.wake = resolve;
          });
          listener.wake = undefined;
        }
      },
      async return(): Promise<IteratorResult<SubscriptionStatus>> {
        channel.#listeners.delete(listener);
        return { done: true, value: undefined };
      },
    };
  }
}
