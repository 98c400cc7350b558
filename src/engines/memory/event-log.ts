/**
 * A stream's events in id order: an array indexed by `id - base`, with a head
 * offset instead of `shift()` and holes for deleted events, so that append,
 * lookup and removal from either end are O(1) amortized.
 *
 * @module
 */

import type { RawHeaders } from "../engine.js";

/** One stored event. */
export interface StoredRecord {
  readonly id: number;
  readonly subject: string;
  readonly payload: Uint8Array;
  /** As delivered: the published headers plus `Nats-Msg-Id` when a key was given. */
  readonly headers: RawHeaders;
  /** When it was stored (clock ms). */
  readonly time: number;
  /** Its share of the stream's byte limit (see {@link recordBytes}). */
  readonly bytes: number;
}

/**
 * An event's size for `maxBytes`: subject, payload and header names and
 * values. An approximation of nats-server's accounting, which also counts
 * header framing and a fixed overhead per message.
 */
export function recordBytes(subject: string, payload: Uint8Array, headers: RawHeaders): number {
  let bytes = subject.length + payload.byteLength;
  for (const [name, value] of headers) bytes += name.length + value.length;
  return bytes;
}

/** Compact once this many dead slots lead the array (and they are at least half of it). */
const COMPACT_AFTER = 1_024;

/** The events of one stream. Ids are contiguous: every assigned id gets a slot. */
export class EventLog {
  #slots: (StoredRecord | undefined)[] = [];
  /** The id of `#slots[0]`. */
  #base = 1;
  /** Index of the first live slot (or `#slots.length`). */
  #head = 0;
  #count = 0;
  #bytes = 0;
  #lastTime: number | undefined;

  /** Live events. */
  get count(): number {
    return this.#count;
  }

  /** Bytes of the live events. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The id the next stored event gets. */
  get nextId(): number {
    return this.#base + this.#slots.length;
  }

  /** When the last event was stored, even if it is gone since; `undefined` when none ever was. */
  get lastTime(): number | undefined {
    return this.#lastTime;
  }

  /** The oldest live event. */
  first(): StoredRecord | undefined {
    return this.#slots[this.#head];
  }

  /** The first live id, or {@link nextId} when empty. */
  firstId(): number {
    return this.#base + this.#head;
  }

  /** The live event with this id. */
  get(id: number): StoredRecord | undefined {
    const index = id - this.#base;
    return index >= this.#head ? this.#slots[index] : undefined;
  }

  /** Stores `record`, whose id must be {@link nextId}. */
  push(record: StoredRecord): void {
    this.#slots.push(record);
    this.#count++;
    this.#bytes += record.bytes;
    this.#lastTime = record.time;
  }

  /** Makes the next stored event get `id`, past {@link nextId}. Only while the log holds nothing. */
  skipTo(id: number): void {
    if (this.#count > 0 || id <= this.nextId) return;
    this.#base = id;
    this.#slots = [];
    this.#head = 0;
  }

  /** Removes the event with this id; returns it, or `undefined` when it was not there. */
  remove(id: number): StoredRecord | undefined {
    const index = id - this.#base;
    const record = index >= this.#head ? this.#slots[index] : undefined;
    if (record === undefined) return undefined;
    this.#slots[index] = undefined;
    this.#count--;
    this.#bytes -= record.bytes;
    if (index === this.#head) this.#advanceHead();
    return record;
  }

  /** Removes and returns the oldest live event. */
  removeFirst(): StoredRecord | undefined {
    const record = this.#slots[this.#head];
    return record === undefined ? undefined : this.remove(record.id);
  }

  /** The first live id stored at or after `time`, or {@link nextId} (times only grow along the log). */
  firstIdAtOrAfter(time: number): number {
    let lo = this.#head;
    let hi = this.#slots.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const found = this.#liveAtOrAfter(mid, hi);
      if (found === undefined || (this.#slots[found] as StoredRecord).time >= time) hi = mid;
      else lo = found + 1;
    }
    return this.#base + lo;
  }

  #liveAtOrAfter(index: number, end: number): number | undefined {
    for (let i = index; i < end; i++) if (this.#slots[i] !== undefined) return i;
    return undefined;
  }

  #advanceHead(): void {
    while (this.#head < this.#slots.length && this.#slots[this.#head] === undefined) this.#head++;
    if (this.#head === this.#slots.length) {
      this.#base += this.#head;
      this.#slots = [];
      this.#head = 0;
    } else if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#slots.length) {
      this.#slots = this.#slots.slice(this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
  }
}
