/**
 * One feed of the memory engine: a sink attached to a consumer, with the
 * credit the JetStream puller would have outstanding. `pull()` only asks the
 * consumer to look again; the room is measured later, in the consumer's
 * dispatch, so no sink method runs inside `pull()`.
 *
 * @module
 */

import type { Feed, FeedSink } from "../engine.js";

/** What a feed tells its consumer. */
export interface FeedOwner {
  /** The sink may have room: measure it and deliver (asynchronously). */
  feedPulled(feed: MemoryFeed): void;
  /** The feed stopped: send it nothing more. */
  feedStopped(feed: MemoryFeed): void;
}

/** Deliveries of one consumer to one sink. */
export class MemoryFeed implements Feed {
  readonly sink: FeedSink;
  readonly #limit: number;
  readonly #owner: FeedOwner | undefined;
  /** Deliveries asked for and not yet sent: buffered plus credit never exceeds the limit. */
  credit = 0;
  /** `pull()` was called since the room was last measured. */
  wantsRoom = true;
  stopped = false;

  /** `owner` is undefined for a feed that was never attached (its sink is failed instead). */
  constructor(sink: FeedSink, limit: number, owner: FeedOwner | undefined) {
    this.sink = sink;
    this.#limit = limit;
    this.#owner = owner;
  }

  pull(): void {
    if (this.stopped || this.#owner === undefined) return;
    this.wantsRoom = true;
    this.#owner.feedPulled(this);
  }

  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.credit = 0;
      this.#owner?.feedStopped(this);
    }
    return Promise.resolve();
  }

  /** Settlements are applied when sent: nothing is queued. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Measures the sink's room, as the puller sizes a pull request. */
  refill(): void {
    this.wantsRoom = false;
    const room = this.#limit - this.sink.buffered() - this.credit;
    if (room > 0) this.credit += room;
  }

  /** Detaches without a word to the owner; the sink hears `end` (in a microtask). */
  end(end: (sink: FeedSink) => void): void {
    if (this.stopped) return;
    this.stopped = true;
    this.credit = 0;
    queueMicrotask(() => end(this.sink));
  }
}
