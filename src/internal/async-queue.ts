import { ErrorCode, WindshiftError } from "../errors.js";

/** Options for an {@link AsyncQueue}. */
export interface AsyncQueueOptions<T, R> {
  /** Turns a queued item into what the reader gets, at the moment it is taken. */
  readonly take?: (item: T) => R;
  /** Keep at most this many items; pushing more drops the oldest. */
  readonly maxSize?: number;
  /** Called when the reader leaves early (`return()`: `break` in a `for await`). */
  readonly onReturn?: () => Promise<void> | void;
  /** What the one reader is called in the error a second reader gets. */
  readonly what?: string;
}

/**
 * A queue with one asynchronous reader: producers `push` (and finally `end`),
 * the reader iterates with `for await` or `next()`. An item pushed while the
 * reader waits is handed to it directly. A second reader is refused: two
 * loops over one queue would each see half the items.
 *
 * @typeParam T - what is queued.
 * @typeParam R - what the reader gets (`take` turns one into the other).
 */
export class AsyncQueue<T, R = T> implements AsyncIterableIterator<R> {
  #items: (T | undefined)[] = [];
  #head = 0;
  #waiting: ((result: IteratorResult<R>) => void) | undefined;
  #failWaiting: ((error: unknown) => void) | undefined;
  #ended = false;
  #error: unknown;
  #hasError = false;
  #reading = false;
  readonly #options: AsyncQueueOptions<T, R>;

  constructor(options: AsyncQueueOptions<T, R> = {}) {
    this.#options = options;
  }

  /** How many items wait to be read. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Whether `end()` was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Queues an item, or hands it to the waiting reader. Ignored once ended. */
  push(item: T): void {
    if (this.#ended) return;
    const waiting = this.#waiting;
    if (waiting !== undefined) {
      this.#waiting = undefined;
      this.#failWaiting = undefined;
      waiting({ done: false, value: this.#take(item) });
      return;
    }
    this.#items.push(item);
    const max = this.#options.maxSize;
    if (max !== undefined && this.size > max) this.shift();
  }

  /**
   * No more items: the reader gets what is queued, then the end, or `error`
   * (thrown once) when one is given.
   */
  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    if (error !== undefined) {
      this.#error = error;
      this.#hasError = true;
    }
    if (this.#waiting !== undefined && this.size === 0) this.#finish();
  }

  /** Takes the oldest item without going through the reader, or `undefined`. */
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head] as T;
    this.#items[this.#head++] = undefined;
    // Compact now and then instead of shifting a long array on every read.
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1_024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Removes and returns every queued item, oldest first. */
  drain(): T[] {
    const items = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return items;
  }

  /** The queued items, oldest first, left in place. */
  *queued(): IterableIterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i] as T;
  }

  [Symbol.asyncIterator](): this {
    if (this.#reading) {
      throw new WindshiftError(
        ErrorCode.Validation,
        `${this.#options.what ?? "this iterator"} has one reader and is already being read`,
      );
    }
    this.#reading = true;
    return this;
  }

  next(): Promise<IteratorResult<R>> {
    if (this.size > 0) return Promise.resolve({ done: false, value: this.#take(this.shift() as T) });
    if (this.#ended) return this.#ending();
    if (this.#waiting !== undefined) {
      return Promise.reject(
        new WindshiftError(ErrorCode.Validation, "next() called again before the previous call resolved"),
      );
    }
    return new Promise<IteratorResult<R>>((resolve, reject) => {
      this.#waiting = resolve;
      this.#failWaiting = reject;
    });
  }

  async return(): Promise<IteratorResult<R>> {
    await this.#options.onReturn?.();
    this.end();
    return { done: true, value: undefined };
  }

  #take(item: T): R {
    const take = this.#options.take;
    return take === undefined ? (item as unknown as R) : take(item);
  }

  #ending(): Promise<IteratorResult<R>> {
    if (this.#hasError) {
      this.#hasError = false;
      const error = this.#error;
      this.#error = undefined;
      return Promise.reject(error);
    }
    return Promise.resolve({ done: true, value: undefined });
  }

  #finish(): void {
    const waiting = this.#waiting as (result: IteratorResult<R>) => void;
    const fail = this.#failWaiting as (error: unknown) => void;
    this.#waiting = undefined;
    this.#failWaiting = undefined;
    this.#ending().then(waiting, fail);
  }
}
