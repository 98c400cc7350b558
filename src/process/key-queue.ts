/**
 * Runs items one at a time per key, in the order they arrive, while items
 * with other keys run in parallel: `admit` says whether an item may start
 * now, `done` hands over the next item of the same key.
 *
 * @typeParam T - what is queued (a processor queues events).
 */
export class KeyQueue<T> {
  /** Per key with an item running: the items waiting behind it. */
  readonly #queues = new Map<string, T[]>();
  #waiting = 0;

  /** How many items wait behind a running one. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Whether `item` may start now; if not, it waits behind the running item with the same key. */
  admit(key: string, item: T): boolean {
    const queue = this.#queues.get(key);
    if (queue === undefined) {
      this.#queues.set(key, []);
      return true;
    }
    queue.push(item);
    this.#waiting++;
    return false;
  }

  /** The running item with `key` finished: returns the next one to start, if any. */
  done(key: string): T | undefined {
    const queue = this.#queues.get(key);
    const next = queue?.shift();
    if (next === undefined) this.#queues.delete(key);
    else this.#waiting--;
    return next;
  }

  /** Removes every waiting item (running ones stay running) and returns them. */
  drain(): T[] {
    const items: T[] = [];
    for (const queue of this.#queues.values()) items.push(...queue.splice(0));
    this.#waiting = 0;
    return items;
  }
}
