/**
 * The PostgreSQL engine's consumers: creating a consumer at its start
 * position, updating a durable one (keeping its position and the start it
 * was created with, as the memory engine does), reading its state, and
 * deleting it. See `sql/postgres/002_consumers_and_deliveries.sql` for the
 * tables and why the ack floor is derived rather than stored.
 *
 * @module
 */

import { randomInt } from "node:crypto";
import { ErrorCode, isWindshiftError } from "../../errors.js";
import { throwIfAborted } from "../../internal/abort.js";
import type { ConsumerConfig, ConsumerState, Ensured } from "../engine.js";
import { consumerNotFound, filterOutside, filterRefused, streamNotFound } from "../errors.js";
import { consumerConfigFromJson, consumerConfigToJson, filterRegex } from "./consumer-config.js";
import { type Database, inTransaction, quoted, sqlState, withConnection } from "./database.js";
import { LIVE } from "./events.js";
import { databaseFailure, noAnswer } from "./failures.js";

/** A consumer as `ensureConsumer` made or found it. */
export type EnsuredConsumer = Ensured<ConsumerConfig> & { readonly name: string };

const NAME_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const NAME_LENGTH = 8;

/**
 * Creates a consumer on `stream`, or updates the durable one named in
 * `config` to exactly `config`, keeping its position, what it has
 * unsettled, and the start it was created with. An ephemeral consumer
 * (`name` undefined) gets 8 random characters. `NOT_FOUND` when the stream
 * is missing; `SERVER` when a filter lies outside the stream's subjects.
 */
export async function ensureConsumer(
  db: Database,
  schema: string,
  stream: string,
  config: ConsumerConfig,
  signal?: AbortSignal,
): Promise<EnsuredConsumer> {
  throwIfAborted(signal);
  const what = `ensureConsumer("${stream}", ${config.name === undefined ? "ephemeral" : `"${config.name}"`})`;
  try {
    const found = await db.query<{ subjects: string[] }>(
      `SELECT config -> 'subjects' AS subjects FROM ${quoted(schema)}.streams WHERE name = $1`,
      [stream],
    );
    const subjects = found.rows[0]?.subjects;
    if (subjects === undefined) throw streamNotFound(stream);
    const outside = filterOutside(config.subjects, subjects);
    if (outside !== undefined) throw filterRefused(stream, outside, subjects);
    // A consumer gone inactive is removed first: one of its name starts afresh.
    await db.query(`SELECT ${quoted(schema)}.drop_inactive($1)`, [stream]);
    for (;;) {
      const name = config.name ?? ephemeralName();
      const row = await upsert(db, schema, stream, name, config);
      if (row === undefined && config.name !== undefined) throw streamNotFound(stream);
      if (row !== undefined) return { config: consumerConfigFromJson(row.config), created: row.created, name };
      // No row for an ephemeral name: the name was taken (try another) or the stream was just deleted.
      if (!(await streamExists(db, schema, stream))) throw streamNotFound(stream);
    }
  } catch (err) {
    throw failure(err, what, schema, "the consumer was not changed", "the consumer may or may not have been changed");
  }
}

/**
 * One statement: the insert at the start position, or the
 * update of the existing durable row, with the `from` it was created
 * with. No row when the stream is missing, or the ephemeral name is taken.
 */
async function upsert(
  db: Database,
  schema: string,
  stream: string,
  name: string,
  config: ConsumerConfig,
): Promise<{ config: unknown; created: boolean } | undefined> {
  const s = quoted(schema);
  const { from } = config;
  const result = await db.query<{ config: unknown; created: boolean }>(
    `INSERT INTO ${s}.consumers AS c (stream, name, config, filter, next_id)
     SELECT st.id, $2, $3::jsonb, $4,
            CASE $5
              WHEN 'end' THEN st.last_id
              WHEN 'id' THEN least($6::bigint, st.last_id + 1) - 1
              WHEN 'time' THEN coalesce((SELECT min(e.id) FROM ${s}.events e
                                          WHERE e.stream = st.id AND e.stored_at >= $7::timestamptz), st.last_id + 1) - 1
              ELSE coalesce((SELECT min(e.id) FROM ${s}.events e WHERE e.stream = st.id), st.last_id + 1) - 1
            END
       FROM ${s}.streams st WHERE st.name = $1
     ON CONFLICT (stream, name) DO ${
       config.name !== undefined
         ? `UPDATE SET config = jsonb_set(EXCLUDED.config, '{from}', c.config -> 'from'), filter = EXCLUDED.filter,
                       active_at = clock_timestamp()`
         : "NOTHING"
     }
     RETURNING c.config, (c.xmax = 0) AS created`,
    [
      stream,
      name,
      consumerConfigToJson(config),
      filterRegex(config.subjects),
      from.kind,
      from.kind === "id" ? from.id : null,
      from.kind === "time" ? from.time.toISOString() : null,
    ],
  );
  return result.rows[0];
}

async function streamExists(db: Database, schema: string, stream: string): Promise<boolean> {
  const found = await db.query(`SELECT 1 FROM ${quoted(schema)}.streams WHERE name = $1`, [stream]);
  return found.rowCount === 1;
}

interface StateRow {
  config: unknown;
  next_id: string;
  lowest: string | null;
  unsettled: number;
  redelivered: number;
  pending: number;
}

/**
 * The consumer's configuration and progress; `NOT_FOUND` when it (or its
 * stream) is missing. Rows due with every allowed attempt made count as
 * settled: the next claim deletes them.
 */
export async function consumerState(
  db: Database,
  schema: string,
  stream: string,
  consumer: string,
  signal?: AbortSignal,
): Promise<ConsumerState> {
  throwIfAborted(signal);
  const s = quoted(schema);
  const what = `consumerState("${stream}", "${consumer}")`;
  try {
    const result = await db.query<StateRow>(
      `WITH c AS (SELECT * FROM ${s}.consumer_row($1, $2)),
            live AS (
              SELECT d.event_id, d.attempts FROM ${s}.deliveries d, c
               WHERE d.consumer = c.id
                 AND NOT coalesce((c.config ->> 'maxDeliveryAttempts')::int <= d.attempts
                                  AND d.due_at <= clock_timestamp(), false))
       SELECT c.config, k.next_id,
              (SELECT min(event_id) FROM live) AS lowest,
              (SELECT count(*)::int FROM live) AS unsettled,
              (SELECT count(*)::int FROM live WHERE attempts > 1) AS redelivered,
              (SELECT count(*)::int FROM ${s}.events e
                WHERE e.stream = c.stream AND e.id > k.next_id AND (k.filter IS NULL OR e.subject ~ k.filter)
                  AND ${LIVE}) AS pending
         FROM c JOIN ${s}.consumers k ON k.id = c.id JOIN ${s}.streams s ON s.id = c.stream`,
      [stream, consumer],
    );
    const row = result.rows[0];
    if (row === undefined) throw consumerNotFound(stream, consumer);
    const nextId = Number(row.next_id);
    return {
      stream,
      name: consumer,
      config: consumerConfigFromJson(row.config),
      ackFloor: row.lowest === null ? nextId : Number(row.lowest) - 1,
      unsettled: row.unsettled,
      pending: row.pending,
      redelivered: row.redelivered,
      lastDeliveredId: nextId,
    };
  } catch (err) {
    throw failure(err, what, schema, "nothing was changed", "nothing was changed", { stream, consumer });
  }
}

/** Every consumer of `stream`, by name; `NOT_FOUND` when the stream is missing. */
export async function listConsumers(
  db: Database,
  schema: string,
  stream: string,
  signal?: AbortSignal,
): Promise<ConsumerState[]> {
  throwIfAborted(signal);
  const s = quoted(schema);
  let names: string[];
  try {
    await db.query(`SELECT ${s}.drop_inactive($1)`, [stream]);
    const found = await db.query<{ exists: boolean; names: string[] | null }>(
      `SELECT true AS exists, (SELECT array_agg(c.name ORDER BY c.name) FROM ${s}.consumers c WHERE c.stream = st.id) AS names
         FROM ${s}.streams st WHERE st.name = $1`,
      [stream],
    );
    const row = found.rows[0];
    if (row === undefined) throw streamNotFound(stream);
    names = row.names ?? [];
  } catch (err) {
    throw failure(err, `listConsumers("${stream}")`, schema, "nothing was changed", "nothing was changed");
  }
  const states: ConsumerState[] = [];
  for (const name of names) {
    try {
      states.push(await consumerState(db, schema, stream, name, signal));
    } catch (err) {
      // Deleted since it was listed.
      if (!(isWindshiftError(err) && err.code === ErrorCode.NotFound)) throw err;
    }
  }
  return states;
}

/**
 * Removes a consumer and what it has unsettled; `NOT_FOUND` when it (or its
 * stream) is missing. A client given as `db` must not be inside a transaction.
 */
export async function deleteConsumer(
  db: Database,
  schema: string,
  stream: string,
  consumer: string,
  signal?: AbortSignal,
): Promise<void> {
  throwIfAborted(signal);
  const s = quoted(schema);
  const which = `(SELECT id FROM ${s}.consumer_row($1, $2))`;
  try {
    await withConnection(db, (client) =>
      inTransaction(client, async () => {
        // Delivery rows first, then the consumer row: claim()'s lock order, so the two never deadlock.
        await client.query(`DELETE FROM ${s}.deliveries WHERE consumer = ${which}`, [stream, consumer]);
        await client.query(`DELETE FROM ${s}.consumers WHERE id = ${which}`, [stream, consumer]);
      }),
    );
  } catch (err) {
    throw failure(
      err,
      `deleteConsumer("${stream}", "${consumer}")`,
      schema,
      "the consumer was not deleted",
      "the consumer may or may not have been deleted",
      { stream, consumer, deleting: true },
    );
  }
}

/** What a missing stream or consumer (SQLSTATE P0002 from `consumer_row`) was about. */
export interface MissingConsumer {
  readonly stream: string;
  readonly consumer: string;
  readonly deleting?: boolean;
}

/**
 * Maps a failure: `consumer_row`'s no_data_found (P0002) to the other
 * engines' `NOT_FOUND`, anything else as every PostgreSQL call does.
 */
export function failure(
  err: unknown,
  what: string,
  schema: string,
  rolledBack: string,
  unanswered: string,
  missing?: MissingConsumer,
) {
  if (missing !== undefined && sqlState(err) === "P0002") {
    const { stream, consumer, deleting = false } = missing;
    return (err as Error).message === "stream"
      ? streamNotFound(stream, { consumer, deleting })
      : consumerNotFound(stream, consumer, { deleting });
  }
  return databaseFailure(err, { what, schema, rolledBack, unanswered: (cause) => noAnswer(what, unanswered, cause) });
}

function ephemeralName(): string {
  let name = "";
  for (let i = 0; i < NAME_LENGTH; i++) name += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)];
  return name;
}
