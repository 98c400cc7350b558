/**
 * The delivery half of the engine seam (see `engine.ts`): one delivery of
 * one event and how it is settled, and the feed that brings deliveries of a
 * consumer to a subscription's sink.
 *
 * @module
 */

import type { WindshiftError } from "../errors.js";
import type { HeaderMap, RawHeaders } from "../internal/headers.js";

/**
 * How a delivery is settled:
 * - `ack`: processed.
 * - `nak`: redeliver (after `delayMs`, when given).
 * - `term`: never redeliver.
 * - `progress`: still working; restarts the processing timeout.
 * - `release`: given back unprocessed (a subscription or processor closing);
 *   redeliver soon, keeping the order in which releases were sent.
 */
export type SettleKind = "ack" | "nak" | "term" | "progress" | "release";

/** What a delivery is: which event, through which consumer, which time. */
export type DeliveryFacts = Pick<Delivery, "id" | "subject" | "stream" | "consumer" | "deliveryAttempt" | "payload">;

/**
 * One delivery of one event, created by the engine and settled through it.
 * Each engine subclasses it with how headers are read and how settlements
 * travel.
 */
export abstract class Delivery {
  readonly id: number;
  readonly subject: string;
  readonly stream: string;
  readonly consumer: string;
  /** Which delivery of the event this is, from 1. */
  readonly deliveryAttempt: number;
  readonly payload: Uint8Array;
  /**
   * When the consuming side took it in, on its clock; set by the
   * subscription that buffers it (auto-ping's limit counts from it).
   */
  receivedAt: number | undefined = undefined;
  #headers: HeaderMap | undefined;

  constructor(facts: DeliveryFacts) {
    this.id = facts.id;
    this.subject = facts.subject;
    this.stream = facts.stream;
    this.consumer = facts.consumer;
    this.deliveryAttempt = facts.deliveryAttempt;
    this.payload = facts.payload;
  }

  /** The headers for lookups, read on first access. */
  get headers(): HeaderMap {
    this.#headers ??= this.readHeaders();
    return this.#headers;
  }

  /**
   * Whether `send` applies a settlement before it returns (an engine in this
   * process): then a confirmed settlement is the same as a sent one, and
   * needs no round trip to wait for.
   */
  get settlesAtOnce(): boolean {
    return false;
  }

  /** Builds the lookup map of the delivery's headers (once). */
  protected abstract readHeaders(): HeaderMap;
  /** The headers as published (names as sent), for dead letters. */
  abstract rawHeaders(): RawHeaders;
  /**
   * Settles without waiting for the engine's confirmation. Acks may be
   * batched; the feed's `flush()` sends what is queued. Throws `CLOSED` when
   * the connection is closed.
   */
  abstract send(kind: SettleKind, delayMs?: number): void;
  /**
   * One confirmed settlement attempt: resolves once the engine has it.
   * Rejects with `TIMEOUT`, `CLOSED`, `SERVER` or `ABORTED`; retries are the
   * caller's.
   */
  abstract confirm(
    kind: SettleKind,
    delayMs: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<void>;
}

/** Something worth telling a subscription's user about its feed. */
export type FeedStatus =
  /** The connection came back; pulling started again. */
  | {
      /** What happened. */
      readonly type: "reconnected";
    }
  /** The server went quiet for two heartbeats; the pull was issued again. */
  | {
      /** What happened. */
      readonly type: "heartbeats-missed";
    }
  /** The server refused a pull request (e.g. the consumer's max waiting pulls were exceeded). */
  | {
      /** What happened. */
      readonly type: "pull-refused";
      /** The server's words. */
      readonly reason: string;
    };

/** What a feed delivers to: a subscription's buffer. */
export interface FeedSink {
  /** How many deliveries wait in the sink's buffer, not yet handed out. */
  buffered(): number;
  /** A delivery. Called at most `limit - buffered()` times ahead of the sink's reads. */
  deliver(delivery: Delivery): void;
  /** The consumer is gone (`NOT_FOUND`) or unusable: no more deliveries come. */
  fail(error: WindshiftError): void;
  /** The connection closed for good: no more deliveries come. */
  ended(): void;
  /** A status for the user. */
  report(status: FeedStatus): void;
}

/** How much a feed may fetch ahead. */
export interface FeedOptions {
  /** Deliveries buffered by the sink plus those requested never exceed this. */
  readonly limit: number;
}

/** Deliveries of one consumer flowing to one sink. */
export interface Feed {
  /** The sink has room again (it handed a delivery out): fetch more if worthwhile. */
  pull(): void;
  /**
   * Stops delivering. Resolves once the engine will send this feed nothing
   * more, so that deliveries released after it are not handed back to it.
   */
  stop(): Promise<void>;
  /** Resolves once the settlements sent so far have reached the engine (bounded wait). */
  flush(): Promise<void>;
}
