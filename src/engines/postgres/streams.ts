/**
 * The PostgreSQL engine's streams: creating and updating a stream's row with
 * the checks only the engine can make (subjects another stream owns, a
 * storage change), reading the catalog, and deleting a stream with its
 * events. Changes to the catalog are serialised by an advisory lock on it,
 * so two processes cannot create overlapping streams at once; appends do not
 * take that lock.
 *
 * @module
 */

import type { ClientBase } from "pg";
import { throwIfAborted } from "../../internal/abort.js";
import { holdable } from "../canonical.js";
import type { Ensured, StreamConfig } from "../engine.js";
import { ownSubjectsOverlap, storageChange, subjectsOverlap } from "../errors.js";
import { overlaps } from "../subjects.js";
import { type Database, inTransaction, lockForTransaction, quoted, withConnection } from "./database.js";
import { databaseFailure, noAnswer } from "./failures.js";
import { configFromJson, configToJson } from "./stream-config.js";

/** A stream as its row holds it. */
export interface StreamRow {
  /** The row's surrogate key, which events refer to. */
  readonly id: number;
  readonly config: StreamConfig;
}

/** Every stream of `schema`, by name. */
export async function loadStreams(client: Database, schema: string): Promise<StreamRow[]> {
  const result = await client.query<{ id: number; config: unknown }>(
    `SELECT id, config FROM ${quoted(schema)}.streams ORDER BY name`,
  );
  return result.rows.map((row) => ({ id: row.id, config: configFromJson(row.config) }));
}

/**
 * Creates the stream, or makes the existing one exactly `config` (its events
 * and last id stay). Refuses, with `SERVER` and the other engines' words,
 * subjects that overlap each other or another stream's, and a storage
 * change. A client given as `db` must not be inside a transaction.
 */
export async function ensureStream(
  db: Database,
  schema: string,
  config: StreamConfig,
  signal?: AbortSignal,
): Promise<Ensured<StreamConfig>> {
  throwIfAborted(signal);
  const held = holdable(config);
  const { name, subjects } = held;
  subjects.forEach((a, i) => {
    const b = subjects.slice(i + 1).find((other) => overlaps(a, other));
    if (b !== undefined) throw ownSubjectsOverlap(name, a, b);
  });
  const json = configToJson(held);
  const table = `${quoted(schema)}.streams`;
  try {
    return await withConnection(db, (client) =>
      inTransaction(client, async () => {
        await lockForTransaction(client, { streamsOf: schema });
        const streams = await loadStreams(client, schema);
        const existing = streams.find((s) => s.config.name === name);
        check(held, existing, streams);
        if (existing === undefined) {
          await client.query(`INSERT INTO ${table} (name, config) VALUES ($1, $2)`, [name, json]);
          return { config: held, created: true };
        }
        if (configToJson(existing.config) !== json) {
          await client.query(`UPDATE ${table} SET config = $2 WHERE id = $1`, [existing.id, json]);
        }
        return { config: held, created: false };
      }),
    );
  } catch (err) {
    throw failure(
      err,
      `ensureStream("${name}")`,
      schema,
      "the stream was not changed",
      "the stream may or may not have been changed: run it again",
    );
  }
}

/**
 * Deletes the stream and its events; false when there is none. A client
 * given as `db` must not be inside a transaction.
 */
export async function deleteStream(db: Database, schema: string, name: string, signal?: AbortSignal): Promise<boolean> {
  throwIfAborted(signal);
  try {
    return await withConnection(db, (client: ClientBase) =>
      inTransaction(client, async () => {
        await lockForTransaction(client, { streamsOf: schema });
        // Delivery rows before the consumer rows the cascade locks: claim()'s lock order (migration 002).
        await client.query(
          `DELETE FROM ${quoted(schema)}.deliveries WHERE stream = (SELECT id FROM ${quoted(schema)}.streams WHERE name = $1)`,
          [name],
        );
        const deleted = await client.query(`DELETE FROM ${quoted(schema)}.streams WHERE name = $1`, [name]);
        return deleted.rowCount === 1;
      }),
    );
  } catch (err) {
    throw failure(
      err,
      `deleteStream("${name}")`,
      schema,
      "the stream was not deleted",
      "the stream may or may not have been deleted",
    );
  }
}

/** Refuses a storage change, and subjects another stream owns (subject by subject, as the other engines). */
function check(config: StreamConfig, existing: StreamRow | undefined, streams: readonly StreamRow[]): void {
  const { name } = config;
  if (existing !== undefined && existing.config.storage !== config.storage) {
    throw storageChange(name, existing.config.storage, config.storage);
  }
  for (const a of config.subjects) {
    for (const other of streams) {
      if (other.config.name !== name && other.config.subjects.some((b) => overlaps(a, b))) {
        throw subjectsOverlap(name, a, other.config.name);
      }
    }
  }
}

function failure(err: unknown, what: string, schema: string, rolledBack: string, unanswered: string) {
  return databaseFailure(err, { what, schema, rolledBack, unanswered: (cause) => noAnswer(what, unanswered, cause) });
}
