/**
 * What a `publish` call takes and gives back: its options with their
 * defaults, the transaction it may join, and its outcome.
 *
 * @module
 */

import { validationError } from "../errors.js";
import { describe } from "../internal/names.js";
import type { Defaults } from "../internal/options.js";
import type { RetryOptions } from "../internal/retry.js";
import type { Runtime } from "../runtime.js";

/** Options for one `publish` call. */
export interface PublishOptions {
  /**
   * A key that makes the publish idempotent: within the stream's
   * deduplication window a second event with the same key is not stored, and
   * the call reports `duplicate: true` with the first event's id. Sent as
   * `Nats-Msg-Id`. When `retry` is on and no key is given, one is generated so
   * that a retry can never store the event twice.
   * @default none
   */
  readonly idempotencyKey?: string;
  /**
   * Optimistic concurrency: store the event only if the stream's last event
   * has this id; otherwise the call fails with `WRONG_SEQUENCE`. Use `0` for
   * "the stream is empty".
   * @default no check
   */
  readonly expectedLastId?: number;
  /**
   * Optimistic concurrency per subject: store the event only if the last event
   * on this subject has this id (`0`: none yet); otherwise `WRONG_SEQUENCE`.
   * nats-server before 2.9.21 may let several writers win on replicated
   * streams; windshift warns once when connected to such a server.
   * @default no check
   */
  readonly expectedLastSubjectId?: number;
  /**
   * When the event occurred (`WS-Published-Time`).
   * @default now (the client's clock)
   */
  readonly occurredAt?: Date;
  /**
   * How long to wait for the stream's acknowledgement per attempt.
   * @default 5_000
   */
  readonly timeoutMs?: number;
  /**
   * Retry transient failures (`UNAVAILABLE`, `UNBOUND_SUBJECT`,
   * `PUBLISH_TIMEOUT`), never a wrong sequence or a validation error. `true`
   * retries from 20 ms, doubling up to 1 s with jitter, for at most 20 s; an
   * object is merged over that.
   * @default false
   */
  readonly retry?: RetryOptions | boolean;
  /**
   * Extra headers to send with the event. windshift's own headers cannot be
   * set here (use the options above). A `traceparent` given here is sent as is,
   * and then no trace context is injected.
   * @default none
   */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Check the message against its schema's `buf.validate` rules before
   * anything is sent: `INVALID_MESSAGE` with the violations when it breaks
   * one, and nothing is stored. Needs `@bufbuild/protovalidate`.
   * @default the client's `validate` option
   */
  readonly validate?: boolean;
  /** Cancels the call. The event may still have been stored. */
  readonly signal?: AbortSignal;
  /**
   * Store the event inside your open database transaction, so that it is
   * stored if and only if the transaction commits (a transactional outbox):
   * on the PostgreSQL engine, a `pg` client on which you sent `BEGIN`.
   * Subscribers see the event once you commit; the stream takes no other
   * event until then, so keep such transactions short. Refused with
   * `VALIDATION` on engines without transactions, and together with
   * `retry` (a failed statement aborts the transaction: retry the whole
   * transaction instead).
   * @default none: the event is stored on its own
   */
  readonly transaction?: Transaction;
}

/**
 * A database client inside a transaction, as the engine's driver has it
 * (a `pg` client for the PostgreSQL engine).
 */
export interface Transaction {
  /** Runs a statement in the transaction. */
  query(...args: never[]): unknown;
}

/** The outcome of a publish. */
export interface PublishedEvent {
  /** The event's id: its sequence number in the stream. */
  readonly id: number;
  /** The stream that stored the event. */
  readonly stream: string;
  /** Whether the idempotency key had been seen: the event was not stored again. */
  readonly duplicate: boolean;
}

/** The defaults of {@link PublishOptions}. */
export const publishDefaults: Defaults<PublishOptions> = Object.freeze({
  idempotencyKey: undefined,
  expectedLastId: undefined,
  expectedLastSubjectId: undefined,
  occurredAt: undefined,
  timeoutMs: 5_000,
  retry: false,
  headers: undefined,
  validate: undefined,
  signal: undefined,
  transaction: undefined,
});

/** The `transaction` option, checked against the engine and `retry`. */
export function readTransaction(rt: Runtime, value: unknown, retrying: boolean): Transaction | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null || typeof (value as Partial<Transaction>).query !== "function") {
    throw validationError("transaction", `${describe(value)} is not a database client (it has no query() method)`);
  }
  if (!rt.engine.transactions) {
    throw validationError(
      "transaction",
      `the ${rt.engine.connection().system} engine stores events apart from any database transaction; publish in a transaction needs the PostgreSQL engine (windshift/postgres)`,
    );
  }
  if (retrying) {
    throw validationError(
      "transaction",
      "cannot be combined with retry: a failed statement aborts the transaction; retry the whole transaction instead",
    );
  }
  return value as Transaction;
}
