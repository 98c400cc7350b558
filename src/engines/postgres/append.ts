/**
 * Appends on PostgreSQL: one attempt to store an event in the stream that
 * captures its subject, with the semantics of `Engine.append`.
 *
 * The work is one call of the schema's `append()` function (see
 * `sql/postgres/001_streams_and_events.sql`), a single statement and so a
 * single round trip: it takes the stream row's lock, deduplicates, checks
 * `expectedLastId` / `expectedLastSubjectId`, applies the stream's limits
 * (migration 003: refusals come back as outcomes, worded here as the memory
 * engine words them), then gives the next id and inserts the event. The row
 * lock is held until the statement's transaction commits, which makes ids
 * gapless per stream and committed in id order.
 *
 * @module
 */

import type { ClientBase } from "pg";
import { ErrorCode, WindshiftError } from "../../errors.js";
import { throwIfAborted } from "../../internal/abort.js";
import { raceDeadline } from "../../internal/clock.js";
import { describe } from "../../internal/names.js";
import { storedHeaders } from "../canonical.js";
import type { Appended, AppendOptions, OutgoingEvent } from "../engine.js";
import { limitRefused, unboundSubject, wrongSequence } from "../errors.js";
import { AppendBatches, type AppendRow, type Attempt } from "./append-batches.js";
import { Captures, type CapturingStream } from "./captures.js";
import { type Database, isPool, quoted, schemaName, withConnection } from "./database.js";
import { databaseFailure, noAnswer } from "./failures.js";

/** Stores events in the streams of one schema. */
export interface Appender {
  /**
   * One attempt to store `event` in the stream capturing its subject:
   * `UNBOUND_SUBJECT` when none does, `WRONG_SEQUENCE` when a check fails,
   * `UNAVAILABLE` when PostgreSQL cannot answer and the event was not stored,
   * `PUBLISH_TIMEOUT` when no answer came within `timeoutMs` (or the
   * connection failed) after it was sent (stored or not), `ABORTED` when
   * `signal` aborts (once sent, the statement goes on and may store the
   * event), `SERVER` when PostgreSQL refuses it.
   */
  append(event: OutgoingEvent, options: AppendOptions): Promise<Appended>;
}

/** Options of {@link createAppender}. */
export interface AppenderOptions {
  /** The schema `ensureSchema` prepared. */
  readonly schema: string;
}

/**
 * How often a stream may move under one append (deleted or given other
 * subjects between the lookup and the insert) before the append gives up.
 */
const MAX_MOVES = 5;

/** A limit's refusal (migration 003), in the memory engine's (and nats-server's) words. */
const REFUSALS: Partial<Record<AppendRow["outcome"], string>> = {
  event_too_large: "message size exceeds maximum allowed",
  subject_full: "maximum messages per subject exceeded",
  stream_full: "maximum messages exceeded",
  bytes_full: "maximum bytes exceeded",
};

/**
 * Creates an appender over `db`: a pool (a connection is checked out per
 * append), or a client, whose transaction, if it is in one, the append joins
 * (the event is then stored if and only if that transaction commits, and the
 * stream is held until it ends).
 *
 * @example
 * ```ts
 * const appender = createAppender(pool, { schema: "windshift" });
 * const { id } = await appender.append(event, { timeoutMs: 5_000, signal: undefined });
 * ```
 */
export function createAppender(db: Database, options: AppenderOptions): Appender {
  const schema = schemaName("schema", options.schema);
  const captures = new Captures(schema);
  const single = `SELECT outcome, id FROM ${quoted(schema)}.append($1, $2, $3, $4, $5, $6, $7, $8)`;
  const many = `SELECT n, outcome, id FROM ${quoted(schema)}.append_many($1, $2, $3, $4, $5, $6, $7, $8)`;
  // Appends of the pool to one stream wait for each other's statement and go together; a client's go one by one.
  const batches = isPool(db) ? new AppendBatches(db, { single, many }) : undefined;

  async function attempt(event: OutgoingEvent, state: Attempt, via: Database): Promise<Appended> {
    const { subject } = event;
    let stream = captures.cached(subject) ?? (await captures.reload(via, subject));
    for (let moves = 0; ; moves++) {
      if (stream === undefined) throw unboundSubject(subject);
      if (state.abandoned) throw new WindshiftError(ErrorCode.Aborted, "the append was given up on");
      const target = stream;
      const row =
        batches !== undefined && via === db
          ? await batches.store(target, event, state)
          : await withConnection(via, (client) => {
              state.sent = true;
              return store(client, target, event);
            });
      if (row.outcome !== "moved") return appended(row, stream, event);
      if (moves === MAX_MOVES) throw keptMoving(subject, stream.name);
      state.sent = false;
      stream = await captures.reload(via, subject);
    }
  }

  async function store(client: ClientBase, stream: CapturingStream, event: OutgoingEvent): Promise<AppendRow> {
    const { payload } = event;
    const result = await client.query<AppendRow>(single, [
      stream.id,
      stream.subjectsJson,
      event.subject,
      JSON.stringify(storedHeaders(event)),
      Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
      event.idempotencyKey ?? null,
      event.expectedLastId ?? null,
      event.expectedLastSubjectId ?? null,
    ]);
    const row = result.rows[0];
    if (row === undefined) throw new WindshiftError(ErrorCode.Server, `${schema}.append() returned no row`);
    return row;
  }

  return {
    async append(event, { timeoutMs, signal, transaction }) {
      throwIfAborted(signal);
      const state: Attempt = { sent: false, abandoned: false };
      const what = `publish to ${describe(event.subject)}`;
      // In the caller's transaction the statement joins it: stored if and only if it commits.
      const via = transaction === undefined ? db : (transaction as ClientBase);
      const work = attempt(event, state, via).catch((err: unknown) => {
        throw databaseFailure(err, {
          what,
          schema,
          rolledBack:
            transaction === undefined
              ? "the event was not stored"
              : "the event was not stored, and the transaction is aborted: roll it back",
          unanswered: (cause) =>
            state.sent ? publishTimeout(event.subject, cause) : noAnswer(what, "the event was not stored", cause),
        });
      });
      return bounded(work, state, timeoutMs, signal, event.subject);
    },
  };
}

/** The result of a stored (or duplicate) event, or the failed check. */
function appended(row: AppendRow, stream: CapturingStream, event: OutgoingEvent): Appended {
  const id = Number(row.id);
  if (row.outcome === "stored" || row.outcome === "duplicate") {
    return { id, stream: stream.name, duplicate: row.outcome === "duplicate" };
  }
  const { subject, expectedLastId, expectedLastSubjectId } = event;
  const refusal = REFUSALS[row.outcome];
  if (refusal !== undefined) throw limitRefused(subject, stream.name, refusal);
  throw wrongSequence({ subject, stream: stream.name, expectedLastId, expectedLastSubjectId }, id);
}

/**
 * Races `work` against `timeoutMs` and `signal`; the listener and the timer
 * are always removed. Given up on before its statement was sent, the work
 * sends nothing (`UNAVAILABLE`: not stored); after, the outcome is unknown
 * (`PUBLISH_TIMEOUT`).
 */
function bounded(
  work: Promise<Appended>,
  state: Attempt,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  subject: string,
): Promise<Appended> {
  return raceDeadline(work, {
    timeoutMs,
    signal,
    timedOut: () => (state.sent ? publishTimeout(subject, undefined) : noConnection(subject, timeoutMs)),
    givenUp: () => {
      state.abandoned = true;
    },
  });
}

function noConnection(subject: string, timeoutMs: number): WindshiftError {
  return new WindshiftError(
    ErrorCode.Unavailable,
    `publish to ${describe(subject)}: no connection to PostgreSQL within ${timeoutMs} ms (is the pool too small?); the event was not stored`,
    { details: { subject } },
  );
}

function publishTimeout(subject: string, cause: unknown): WindshiftError {
  const why = cause === undefined ? "timed out" : "lost its connection";
  return new WindshiftError(
    ErrorCode.PublishTimeout,
    `publish to ${describe(subject)} ${why}: the event may or may not have been stored`,
    cause === undefined ? { details: { subject } } : { cause, details: { subject } },
  );
}

function keptMoving(subject: string, stream: string): WindshiftError {
  return new WindshiftError(
    ErrorCode.Server,
    `publish to ${describe(subject)}: stream ${describe(stream)} kept being deleted or changed while the event was stored; the event was not stored`,
    { details: { subject, stream } },
  );
}
