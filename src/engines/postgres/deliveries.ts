/**
 * Deliveries on PostgreSQL: claiming a consumer's due work and settling it,
 * one statement each (the schema's `claim()` and `settle()` functions, see
 * `sql/postgres/002_consumers_and_deliveries.sql`). Competing claimers of
 * one consumer never hold the same event at once: due rows are taken with
 * `FOR UPDATE SKIP LOCKED`, new events under the consumer row's lock.
 *
 * @module
 */

import { throwIfAborted } from "../../internal/abort.js";
import type { DeliveryFacts, RawHeaders, SettleKind } from "../engine.js";
import { failure } from "./consumers.js";
import { type Database, quoted } from "./database.js";

/** One event claimed for a consumer: what a delivery is made of. */
export interface Claimed extends DeliveryFacts {
  /** The headers as published (names as sent). */
  readonly headers: RawHeaders;
  /** When the stream stored it (epoch milliseconds). */
  readonly time: number;
}

interface ClaimRow {
  id: string;
  subject: string;
  headers: [string, string][];
  payload: Buffer;
  stored_at: Date;
  attempts: number;
}

/**
 * Claims at most `max` deliveries of `consumer`: redeliveries that are due
 * (a lapsed processing timeout, a nak's delay passed, a release) first, with
 * their attempt count raised, then events not delivered yet, in id order,
 * while the consumer has fewer than `maxUnsettledEvents` unsettled. Each
 * claimed event is leased for `processingTimeoutMs`. An event due with
 * every allowed attempt made (`maxDeliveryAttempts`) is not redelivered: it
 * counts as settled. `NOT_FOUND` when the consumer (or its stream) is missing.
 */
export async function claim(
  db: Database,
  schema: string,
  stream: string,
  consumer: string,
  max: number,
  signal?: AbortSignal,
): Promise<Claimed[]> {
  throwIfAborted(signal);
  try {
    const result = await db.query<ClaimRow>(
      `SELECT id, subject, headers, payload, stored_at, attempts FROM ${quoted(schema)}.claim($1, $2, $3)`,
      [stream, consumer, max],
    );
    return result.rows.map((row) => ({
      id: Number(row.id),
      subject: row.subject,
      stream,
      consumer,
      deliveryAttempt: row.attempts,
      payload: new Uint8Array(row.payload.buffer, row.payload.byteOffset, row.payload.byteLength),
      headers: row.headers,
      time: row.stored_at.getTime(),
    }));
  } catch (err) {
    throw failure(
      err,
      `claim("${stream}", "${consumer}")`,
      schema,
      "nothing was claimed",
      "events may have been claimed; they are redelivered after the processing timeout",
      { stream, consumer },
    );
  }
}

/**
 * Settles event `id` of `consumer`, whichever delivery of it this is:
 * `ack` and `term` settle it for good; `nak` makes it due again after
 * `delayMs` (0: now) and `release` now, unless it has had every allowed
 * attempt, which settles it; `progress` restarts its processing timeout.
 * Resolves true when the event was unsettled, false when it was settled
 * already (or left the stream). `NOT_FOUND` when the consumer is missing.
 */
export async function settle(
  db: Database,
  schema: string,
  stream: string,
  consumer: string,
  id: number,
  kind: SettleKind,
  delayMs = 0,
  signal?: AbortSignal,
): Promise<boolean> {
  throwIfAborted(signal);
  try {
    const result = await db.query<{ settled: boolean }>(
      `SELECT ${quoted(schema)}.settle($1, $2, $3, $4, $5) AS settled`,
      [stream, consumer, id, kind, Math.max(0, Math.round(delayMs))],
    );
    return result.rows[0]?.settled === true;
  } catch (err) {
    throw failure(
      err,
      `${kind} of event ${id} of consumer "${consumer}" of stream "${stream}"`,
      schema,
      "the event was not settled",
      "the event may or may not have been settled",
      { stream, consumer },
    );
  }
}
