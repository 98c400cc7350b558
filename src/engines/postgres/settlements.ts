/**
 * Settlements of one consumer on PostgreSQL, sent in batches: what is
 * queued while a batch is on its way goes in the next one, as one statement
 * that applies the schema's `settle()` to each in the order they were sent
 * (so releases keep their order, and `due_at` grows with it). One round trip
 * then settles a whole turn's acks, whether they were sent fire-and-forget
 * or are awaited (`confirm`).
 *
 * @module
 */

import { ErrorCode, WindshiftError } from "../../errors.js";
import type { Logger } from "../../internal/logger.js";
import type { SettleKind } from "../engine.js";
import { failure } from "./consumers.js";
import { type Database, quoted } from "./database.js";

/** One settlement waiting to be sent. */
interface Queued {
  readonly id: number;
  readonly kind: SettleKind;
  readonly delayMs: number;
  /** Set for a confirmed settlement: told once its batch is applied, or failed. */
  readonly done: ((error: WindshiftError | undefined) => void) | undefined;
}

/** What a queue needs from its engine. */
export interface SettlementHost {
  readonly db: Database;
  readonly schema: string;
  readonly logger: Logger;
  /** Whether the engine was closed: nothing more is sent. */
  isClosed(): boolean;
  /** A batch was applied: the consumer may have room, or events due again soon. */
  applied(stream: string, consumer: string, batch: readonly { kind: SettleKind; delayMs: number }[]): void;
}

/** The most settlements one statement carries. */
const MAX_BATCH = 1_000;

/** The queue of one consumer's settlements. */
export class SettlementQueue {
  readonly #host: SettlementHost;
  readonly #stream: string;
  readonly #consumer: string;
  readonly #sql: string;
  readonly #acks: string;
  #queued: Queued[] = [];
  #sending: Promise<void> | undefined;

  constructor(host: SettlementHost, stream: string, consumer: string) {
    this.#host = host;
    this.#stream = stream;
    this.#consumer = consumer;
    this.#sql =
      `SELECT ${quoted(host.schema)}.settle($1, $2, t.id, t.kind, t.delay) ` +
      "FROM unnest($3::bigint[], $4::text[], $5::bigint[]) WITH ORDINALITY AS t(id, kind, delay, n)";
    // Acks and terms (most batches are only those) are one delete: the consumer looked up once, not per event.
    const s = quoted(host.schema);
    this.#acks =
      `WITH c AS (SELECT id FROM ${s}.consumer_row($1, $2)) ` +
      `DELETE FROM ${s}.deliveries d USING c WHERE d.consumer = c.id AND d.event_id = ANY ($3::bigint[])`;
  }

  /** Queues a settlement without waiting for it; `CLOSED` after the engine closed. */
  send(id: number, kind: SettleKind, delayMs: number): void {
    if (this.#host.isClosed()) throw closed(kind, id);
    this.#queued.push({ id, kind, delayMs, done: undefined });
    this.#kick();
  }

  /** Queues a settlement and resolves once PostgreSQL applied it. */
  confirm(id: number, kind: SettleKind, delayMs: number): Promise<void> {
    if (this.#host.isClosed()) return Promise.reject(closed(kind, id));
    return new Promise<void>((resolve, reject) => {
      this.#queued.push({ id, kind, delayMs, done: (error) => (error === undefined ? resolve() : reject(error)) });
      this.#kick();
    });
  }

  /** Resolves once everything queued so far was sent and answered. */
  async flush(): Promise<void> {
    while (this.#sending !== undefined) await this.#sending;
  }

  /** Whether nothing is queued or on its way. */
  get idle(): boolean {
    return this.#sending === undefined && this.#queued.length === 0;
  }

  #kick(): void {
    if (this.#sending !== undefined) return;
    this.#sending = this.#drain().finally(() => {
      this.#sending = undefined;
      // Queued after the drain's last look but before this ran: it saw a drain on its way and did not kick.
      if (this.#queued.length > 0) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    // Let the rest of this turn's settlements join the first batch.
    await Promise.resolve();
    while (this.#queued.length > 0) {
      const batch = this.#queued.splice(0, MAX_BATCH);
      let error: WindshiftError | undefined;
      try {
        const ids = batch.map((q) => q.id);
        if (batch.every((q) => q.kind === "ack" || q.kind === "term")) {
          await this.#host.db.query(this.#acks, [this.#stream, this.#consumer, ids]);
        } else {
          await this.#host.db.query(this.#sql, [
            this.#stream,
            this.#consumer,
            ids,
            batch.map((q) => q.kind),
            batch.map((q) => Math.max(0, Math.round(q.delayMs))),
          ]);
        }
      } catch (err) {
        error = this.#failure(err, batch);
      }
      if (error === undefined) this.#host.applied(this.#stream, this.#consumer, batch);
      let unconfirmed = 0;
      for (const q of batch) {
        if (q.done !== undefined) q.done(error);
        else unconfirmed++;
      }
      if (error !== undefined && unconfirmed > 0) {
        this.#host.logger.warn("settlements failed; their events are redelivered after the processing timeout", {
          stream: this.#stream,
          consumer: this.#consumer,
          count: unconfirmed,
          error: error.message,
        });
      }
    }
  }

  #failure(err: unknown, batch: readonly Queued[]): WindshiftError {
    const first = batch[0] as Queued;
    const what =
      batch.length === 1
        ? `${first.kind} of event ${first.id} of consumer "${this.#consumer}" of stream "${this.#stream}"`
        : `${batch.length} settlements of consumer "${this.#consumer}" of stream "${this.#stream}"`;
    // The settler retries any of these but CLOSED; settling an event twice is harmless.
    return failure(err, what, this.#host.schema, "nothing was settled", "the events may or may not have been settled", {
      stream: this.#stream,
      consumer: this.#consumer,
    });
  }
}

function closed(kind: SettleKind, id: number): WindshiftError {
  return new WindshiftError(ErrorCode.Closed, `${kind} of event ${id}: the PostgreSQL engine is closed`, {
    details: { id },
  });
}
