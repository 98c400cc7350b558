/**
 * One delivery of the memory engine: a fresh object per delivery, settled
 * through the consumer that made it. Settlement applies to the event id, so
 * settling an older delivery of a still-pending event settles it.
 *
 * @module
 */

import { headerMap } from "../../internal/headers.js";
import { Delivery, type DeliveryFacts, type HeaderMap, type RawHeaders, type SettleKind } from "../engine.js";
import { abortedError } from "./failures.js";

/** Where deliveries are settled: their consumer. */
export interface Settler {
  /** Applies a settlement at once; throws `CLOSED` after the engine closed. */
  settle(id: number, kind: SettleKind, delayMs: number): void;
}

/** A delivery of a stored event. */
export class MemoryDelivery extends Delivery {
  readonly #raw: RawHeaders;
  readonly #settler: Settler;

  constructor(settler: Settler, facts: DeliveryFacts, headers: RawHeaders) {
    // The payload is shared with the stored event and its other deliveries: not copied per delivery.
    super(facts);
    this.#settler = settler;
    this.#raw = headers;
  }

  /** Settlements apply to the consumer before `send` returns. */
  override get settlesAtOnce(): boolean {
    return true;
  }

  protected readHeaders(): HeaderMap {
    return headerMap(this.#raw);
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
    return SETTLED;
  }
}

/** What every confirmed settlement resolves with: applied already, nothing to wait for. */
const SETTLED: Promise<void> = Promise.resolve();
