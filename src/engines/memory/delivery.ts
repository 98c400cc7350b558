/**
 * One delivery of the memory engine: a fresh object per delivery, settled
 * through the consumer that made it. Settlement applies to the event id, so
 * settling an older delivery of a still-pending event settles it.
 *
 * @module
 */

import type { Delivery, HeaderMap, RawHeaders, SettleKind } from "../engine.js";
import type { StoredRecord } from "./event-log.js";
import { abortedError } from "./failures.js";

/** Where deliveries are settled: their consumer. */
export interface Settler {
  /** Applies a settlement at once; throws `CLOSED` after the engine closed. */
  settle(id: number, kind: SettleKind, delayMs: number): void;
}

/** A delivery of a stored event. */
export class MemoryDelivery implements Delivery {
  readonly id: number;
  readonly subject: string;
  readonly stream: string;
  readonly consumer: string;
  readonly deliveryAttempt: number;
  readonly payload: Uint8Array;
  readonly #raw: RawHeaders;
  readonly #settler: Settler;
  #headers: HeaderMap | undefined;

  constructor(settler: Settler, stream: string, consumer: string, record: StoredRecord, attempt: number) {
    this.#settler = settler;
    this.id = record.id;
    this.subject = record.subject;
    this.stream = stream;
    this.consumer = consumer;
    this.deliveryAttempt = attempt;
    // Shared with the stored event and other deliveries of it: not copied per delivery.
    this.payload = record.payload;
    this.#raw = record.headers;
  }

  /** Lower-case name to first value, built on first access. */
  get headers(): HeaderMap {
    if (this.#headers === undefined) {
      const map = new Map<string, string>();
      for (const [name, value] of this.#raw) {
        const key = name.toLowerCase();
        if (!map.has(key)) map.set(key, value);
      }
      this.#headers = map;
    }
    return this.#headers;
  }

  rawHeaders(): RawHeaders {
    return this.#raw;
  }

  send(kind: SettleKind, delayMs?: number): void {
    this.#settler.settle(this.id, kind, delayMs ?? 0);
  }

  /** Applied at once, so there is nothing to wait for: the timeout is never reached. */
  confirm(kind: SettleKind, delayMs: number, _timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortedError(signal));
    try {
      this.#settler.settle(this.id, kind, delayMs);
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve();
  }
}
