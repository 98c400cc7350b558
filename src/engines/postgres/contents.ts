/**
 * What PostgreSQL streams hold: each stream's configuration with its
 * contents (events, bytes, first and last ids and times, subjects,
 * consumers) as the engine's `StreamContents` documents them, read in one
 * statement with the schema's `contents()` function (see
 * `sql/postgres/003_limits_and_reads.sql`). Expired events are left out.
 *
 * @module
 */

import { throwIfAborted } from "../../internal/abort.js";
import type { StreamContents, StreamState } from "../engine.js";
import { streamNotFound } from "../errors.js";
import { type Database, quoted } from "./database.js";
import { databaseFailure, noAnswer } from "./failures.js";
import { configFromJson } from "./stream-config.js";

interface ContentsRow {
  config: unknown;
  event_count: string;
  byte_count: string;
  first_id: string;
  first_time: Date | null;
  last_id: string;
  last_time: Date | null;
  subjects: string;
  consumers: string;
}

/** The seam's contents of a `contents()` row. */
function contentsOf(row: ContentsRow): StreamContents {
  return {
    events: Number(row.event_count),
    bytes: Number(row.byte_count),
    firstId: Number(row.first_id),
    firstTime: row.first_time?.getTime(),
    lastId: Number(row.last_id),
    lastTime: row.last_time?.getTime(),
    subjects: Number(row.subjects),
    consumers: Number(row.consumers),
  };
}

/**
 * The state of every stream of `schema`, by name; of stream `name` only
 * when given (none when it is missing).
 */
export async function streamStates(
  db: Database,
  schema: string,
  name?: string,
  signal?: AbortSignal,
): Promise<StreamState[]> {
  throwIfAborted(signal);
  const s = quoted(schema);
  const what = name === undefined ? "listStreams()" : `streamState("${name}")`;
  try {
    const result = await db.query<ContentsRow>(
      `SELECT st.config, c.* FROM ${s}.streams st CROSS JOIN LATERAL ${s}.contents(st.id) c
        WHERE $1::text IS NULL OR st.name = $1 ORDER BY st.name`,
      [name ?? null],
    );
    return result.rows.map((row) => ({ config: configFromJson(row.config), contents: contentsOf(row) }));
  } catch (err) {
    throw databaseFailure(err, {
      what,
      schema,
      rolledBack: "nothing was changed",
      unanswered: (cause) => noAnswer(what, "nothing was changed", cause),
    });
  }
}

/** The configuration and contents of stream `name`; `NOT_FOUND` when it is missing. */
export async function streamState(
  db: Database,
  schema: string,
  name: string,
  signal?: AbortSignal,
): Promise<StreamState> {
  const [state] = await streamStates(db, schema, name, signal);
  if (state === undefined) throw streamNotFound(name);
  return state;
}

/** What stream `name` holds now; `NOT_FOUND` when it is missing. */
export async function streamContents(
  db: Database,
  schema: string,
  name: string,
  signal?: AbortSignal,
): Promise<StreamContents> {
  return (await streamState(db, schema, name, signal)).contents;
}
