/**
 * One delivery of the PostgreSQL engine: an event claimed for a consumer,
 * settled through that consumer's batched settlement queue. Settlement
 * applies to the event id, so settling an older delivery of an event that is
 * still unsettled settles it, as on the other engines.
 *
 * @module
 */

import { ErrorCode, WindshiftError } from "../../errors.js";
import { abortError } from "../../internal/abort.js";
import { raceDeadline } from "../../internal/clock.js";
import { headerMap } from "../../internal/headers.js";
import { Delivery, type DeliveryFacts, type HeaderMap, type RawHeaders, type SettleKind } from "../engine.js";
import type { SettlementQueue } from "./settlements.js";

/** A delivery of a claimed event. */
export class PostgresDelivery extends Delivery {
  readonly #raw: RawHeaders;
  readonly #queue: SettlementQueue;

  constructor(queue: SettlementQueue, facts: DeliveryFacts, headers: RawHeaders) {
    super(facts);
    this.#queue = queue;
    this.#raw = headers;
  }

  protected readHeaders(): HeaderMap {
    return headerMap(this.#raw);
  }

  rawHeaders(): RawHeaders {
    return this.#raw;
  }

  send(kind: SettleKind, delayMs?: number): void {
    this.#queue.send(this.id, kind, delayMs ?? 0);
  }

  /**
   * Resolves once PostgreSQL applied the settlement. Given up on after
   * `timeoutMs` (`TIMEOUT`) or when `signal` aborts, the settlement may
   * still be applied.
   */
  confirm(kind: SettleKind, delayMs: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return raceDeadline(this.#queue.confirm(this.id, kind, delayMs), {
      timeoutMs,
      signal,
      timedOut: () => timedOut(kind, this.id, timeoutMs),
    });
  }
}

function timedOut(kind: SettleKind, id: number, timeoutMs: number): WindshiftError {
  return new WindshiftError(
    ErrorCode.Timeout,
    `${kind} of event ${id}: PostgreSQL did not confirm it within ${timeoutMs} ms; it may still be applied`,
    { details: { id } },
  );
}
