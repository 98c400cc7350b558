/**
 * Appends to one stream sent together: while a statement for a stream is on
 * its way, the appends to that stream that arrive wait, and go as one call
 * of the schema's `append_many()` when it returns (migration 005). Appends
 * of one stream take turns on the stream's row lock anyway; together they
 * share one round trip and one commit. The first append of a quiet stream
 * goes at once, alone: batching adds no wait.
 *
 * @module
 */

import type { Pool } from "pg";
import { ErrorCode, WindshiftError } from "../../errors.js";
import { storedHeaders } from "../canonical.js";
import type { OutgoingEvent } from "../engine.js";
import type { CapturingStream } from "./captures.js";
import { withConnection } from "./database.js";

/** One row of `append()` / `append_many()`. */
export interface AppendRow {
  outcome:
    | "stored"
    | "duplicate"
    | "wrong_last_subject_id"
    | "wrong_last_id"
    | "moved"
    | "event_too_large"
    | "subject_full"
    | "stream_full"
    | "bytes_full";
  id: string | null;
}

/** Where one attempt is: a statement sent may have stored the event; one given up on must not be sent. */
export interface Attempt {
  sent: boolean;
  abandoned: boolean;
}

interface Waiting {
  readonly event: OutgoingEvent;
  readonly state: Attempt;
  readonly resolve: (row: AppendRow) => void;
  readonly reject: (err: unknown) => void;
}

/** The most events one statement carries. */
const MAX_BATCH = 256;

/** The statements' parameters for `events`, in order: one array per column. */
function columns(events: readonly OutgoingEvent[]): unknown[][] {
  return [
    events.map((e) => e.subject),
    events.map((e) => JSON.stringify(storedHeaders(e))),
    events.map((e) => Buffer.from(e.payload.buffer, e.payload.byteOffset, e.payload.byteLength)),
    events.map((e) => e.idempotencyKey ?? null),
    events.map((e) => e.expectedLastId ?? null),
    events.map((e) => e.expectedLastSubjectId ?? null),
  ];
}

/** The batches of one schema's streams, over a pool. */
export class AppendBatches {
  readonly #pool: Pool;
  readonly #single: string;
  readonly #many: string;
  readonly #waiting = new Map<number, Waiting[]>();

  /** `single` and `many` call `append()` and `append_many()` of the schema. */
  constructor(pool: Pool, sql: { single: string; many: string }) {
    this.#pool = pool;
    this.#single = sql.single;
    this.#many = sql.many;
  }

  /** Stores `event` in `stream`, with the appends to it waiting now; `state.sent` once its statement goes. */
  store(stream: CapturingStream, event: OutgoingEvent, state: Attempt): Promise<AppendRow> {
    return new Promise<AppendRow>((resolve, reject) => {
      const queue = this.#waiting.get(stream.id);
      const waiting: Waiting = { event, state, resolve, reject };
      if (queue !== undefined) {
        queue.push(waiting);
        return;
      }
      this.#waiting.set(stream.id, []);
      void this.#drain(stream, [waiting]);
    });
  }

  async #drain(stream: CapturingStream, first: Waiting[]): Promise<void> {
    let batch = first;
    for (;;) {
      // Given up on before it was sent: never sent (its caller has its answer).
      batch = batch.filter((w) => !w.state.abandoned);
      if (batch.length > 0) await this.#send(stream, batch);
      const queue = this.#waiting.get(stream.id) ?? [];
      if (queue.length === 0) {
        this.#waiting.delete(stream.id);
        return;
      }
      batch = queue.splice(0, MAX_BATCH);
    }
  }

  async #send(stream: CapturingStream, batch: readonly Waiting[]): Promise<void> {
    let sent: readonly Waiting[] = [];
    try {
      const rows = await withConnection(this.#pool, async (client) => {
        // Given up on while the connection was awaited: left out, never sent.
        sent = batch.filter((w) => !w.state.abandoned);
        if (sent.length === 0) return [];
        for (const w of sent) w.state.sent = true;
        const params = columns(sent.map((w) => w.event));
        if (sent.length === 1) {
          const one = params.map((column) => column[0]);
          return (await client.query<AppendRow>(this.#single, [stream.id, stream.subjectsJson, ...one])).rows;
        }
        const result = await client.query<AppendRow & { n: number }>(this.#many, [
          stream.id,
          stream.subjectsJson,
          ...params,
        ]);
        return result.rows.sort((a, b) => a.n - b.n);
      });
      sent.forEach((w, i) => {
        const row = rows[i];
        if (row === undefined) w.reject(new WindshiftError(ErrorCode.Server, "append returned no row for the event"));
        else w.resolve(row);
      });
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  }
}
