/**
 * A consumer's delivered-and-unsettled events. Each is in flight (waiting
 * for its processing timeout), delayed (nak'd with a delay) or due
 * (waiting to be delivered again).
 *
 * In-flight events sit in a Map re-inserted on every touch: the processing
 * timeout is the same for all, so the first entry always has the earliest
 * deadline and one timer per consumer is enough. Due events form a FIFO
 * (releases keep their order); delayed ones a heap of due times. Entries
 * leaving either queue early are not searched for: a ticket, bumped on every
 * move, marks the stale references to skip.
 *
 * @module
 */

import { MinHeap } from "./min-heap.js";

type State = "in-flight" | "delayed" | "due";

/** Compact the due queue once this many taken slots lead it (and they are at least half of it). */
const COMPACT_AFTER = 1_024;

/** One unsettled event of a consumer. */
export interface PendingEvent {
  readonly id: number;
  /** Deliveries so far. */
  attempts: number;
  state: State;
  /** When it was last delivered or its progress reported. */
  touchedAt: number;
  ticket: number;
}

interface Queued {
  readonly event: PendingEvent;
  readonly ticket: number;
  /** Due time (delayed only). */
  readonly at: number;
  /** Tie-break: the order naks were sent in. */
  readonly order: number;
}

/** The unsettled events of one consumer. */
export class PendingSet {
  readonly #inFlight = new Map<number, PendingEvent>();
  readonly #waiting = new Map<number, PendingEvent>();
  #due: Queued[] = [];
  #dueHead = 0;
  readonly #delayed = new MinHeap<Queued>((a, b) => a.at < b.at || (a.at === b.at && a.order < b.order));
  #order = 0;

  /** Delivered and not settled: in flight, delayed or due. */
  get size(): number {
    return this.#inFlight.size + this.#waiting.size;
  }

  get(id: number): PendingEvent | undefined {
    return this.#inFlight.get(id) ?? this.#waiting.get(id);
  }

  /** How many are waiting after more than one delivery (nats-server's `num_redelivered`). */
  redeliveredCount(): number {
    let count = 0;
    for (const map of [this.#inFlight, this.#waiting])
      for (const event of map.values()) if (event.attempts > 1) count++;
    return count;
  }

  /** Records the first delivery of `id`. */
  delivered(id: number, now: number): PendingEvent {
    const event: PendingEvent = { id, attempts: 1, state: "in-flight", touchedAt: now, ticket: 0 };
    this.#inFlight.set(id, event);
    return event;
  }

  /** Records another delivery of a due event. */
  redelivered(event: PendingEvent, now: number): void {
    this.#waiting.delete(event.id);
    event.attempts++;
    event.ticket++;
    event.state = "in-flight";
    event.touchedAt = now;
    this.#inFlight.set(event.id, event);
  }

  /** Restarts an in-flight event's processing timeout (moving it to the back of the deadline order). */
  touch(event: PendingEvent, now: number): void {
    if (event.state !== "in-flight") return;
    this.#inFlight.delete(event.id);
    event.touchedAt = now;
    this.#inFlight.set(event.id, event);
  }

  /** Settled for good (or gone): forgets it. */
  drop(event: PendingEvent): void {
    event.ticket++;
    this.#inFlight.delete(event.id);
    this.#waiting.delete(event.id);
  }

  /** To be delivered again as soon as possible, after the events already due. */
  makeDue(event: PendingEvent): void {
    this.#wait(event, "due");
    this.#due.push({ event, ticket: event.ticket, at: 0, order: 0 });
  }

  /** To be delivered again at `at`. */
  delay(event: PendingEvent, at: number): void {
    this.#wait(event, "delayed");
    this.#delayed.push({ event, ticket: event.ticket, at, order: this.#order++ });
  }

  /** The next due event, taken off the queue (still pending: redeliver or drop it). */
  takeDue(): PendingEvent | undefined {
    while (this.#dueHead < this.#due.length) {
      const queued = this.#due[this.#dueHead++] as Queued;
      if (this.#dueHead >= COMPACT_AFTER && this.#dueHead * 2 >= this.#due.length) {
        this.#due = this.#due.slice(this.#dueHead);
        this.#dueHead = 0;
      }
      if (queued.ticket === queued.event.ticket) return queued.event;
    }
    if (this.#dueHead > 0) {
      this.#due = [];
      this.#dueHead = 0;
    }
    return undefined;
  }

  /** The in-flight event with the earliest deadline. */
  firstInFlight(): PendingEvent | undefined {
    for (const event of this.#inFlight.values()) return event;
    return undefined;
  }

  /** The in-flight events touched at or before `time`, in id order. */
  touchedBy(time: number): PendingEvent[] {
    const out: PendingEvent[] = [];
    for (const event of this.#inFlight.values()) {
      if (event.touchedAt > time) break;
      out.push(event);
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /** When the earliest delayed event is due, if any. */
  nextDelayedAt(): number | undefined {
    for (let top = this.#delayed.peek(); top !== undefined; top = this.#delayed.peek()) {
      if (top.ticket === top.event.ticket) return top.at;
      this.#delayed.pop();
    }
    return undefined;
  }

  /** Makes the delayed events due by `now` due, in due-time order; returns how many. */
  releaseDelayed(now: number): number {
    let count = 0;
    for (let at = this.nextDelayedAt(); at !== undefined && at <= now; at = this.nextDelayedAt()) {
      this.makeDue((this.#delayed.pop() as Queued).event);
      count++;
    }
    return count;
  }

  /** The lowest pending id, or `undefined` when nothing is pending. */
  lowestId(): number | undefined {
    let lowest: number | undefined;
    for (const map of [this.#inFlight, this.#waiting]) {
      for (const id of map.keys()) if (lowest === undefined || id < lowest) lowest = id;
    }
    return lowest;
  }

  #wait(event: PendingEvent, state: State): void {
    this.#inFlight.delete(event.id);
    event.ticket++;
    event.state = state;
    this.#waiting.set(event.id, event);
  }
}
