/**
 * Reading and deleting a PostgreSQL stream's events, with the memory
 * engine's semantics: one event by id or the last on a subject, the events
 * present when a read starts (in pages, so a big stream is never loaded at
 * once), and deleting one event. Events older than the stream's `maxAgeMs`
 * are never returned, whether or not an append has removed them yet (see
 * `sql/postgres/003_limits_and_reads.sql`).
 *
 * @module
 */

import { throwIfAborted } from "../../internal/abort.js";
import type { RawHeaders, StoredEvent } from "../engine.js";
import { type EventWanted, eventNotFound, streamNotFound } from "../errors.js";
import { hasWildcard } from "../subjects.js";
import { filterRegex } from "./consumer-config.js";
import { type Database, quoted, sqlState } from "./database.js";
import { databaseFailure, noAnswer } from "./failures.js";

/** How many events one query of {@link readEvents} fetches. */
export const READ_PAGE = 256;

/**
 * SQL true when event `e` of stream `s` has not expired: younger than the
 * stream's `maxAgeMs`, by the database's clock.
 */
export const LIVE = `((s.config ->> 'maxAgeMs') IS NULL OR e.stored_at > clock_timestamp() - (s.config ->> 'maxAgeMs')::bigint * interval '1 millisecond')`;

/** An event's row as the queries here select it. */
interface EventRow {
  id: string | null;
  subject: string;
  headers: RawHeaders;
  payload: Buffer;
  stored_at: Date;
}

const COLUMNS = "e.id, e.subject, e.headers, e.payload, e.stored_at";

/** The seam's event of a row (the payload a view of the driver's buffer). */
function storedEvent(row: EventRow): StoredEvent {
  return {
    id: Number(row.id),
    subject: row.subject,
    payload: new Uint8Array(row.payload.buffer, row.payload.byteOffset, row.payload.byteLength),
    headers: row.headers,
    time: row.stored_at.getTime(),
  };
}

/**
 * Maps what a call on stream `stream` threw: the SQL functions' no_data_found
 * (P0002) 'stream' to `NOT_FOUND` worded as the memory engine words it, and
 * anything else as every PostgreSQL call does.
 */
export function streamCallFailure(
  err: unknown,
  what: string,
  schema: string,
  stream: string,
  rolledBack: string,
  unanswered: string,
) {
  if (sqlState(err) === "P0002" && (err as Error).message === "stream") return streamNotFound(stream);
  return databaseFailure(err, { what, schema, rolledBack, unanswered: (cause) => noAnswer(what, unanswered, cause) });
}

/**
 * One stored event of `stream`: by id, or the last one on the literal subject
 * `lastOn`. `NOT_FOUND` (the memory engine's words) when there is none, it
 * expired, or the stream is missing.
 */
export async function getEvent(
  db: Database,
  schema: string,
  stream: string,
  which: EventWanted,
  signal?: AbortSignal,
): Promise<StoredEvent> {
  throwIfAborted(signal);
  const s = quoted(schema);
  const byId = "id" in which;
  const what = byId
    ? `getEvent("${stream}", { id: ${which.id} })`
    : `getEvent("${stream}", { lastOn: "${which.lastOn}" })`;
  try {
    const event = byId
      ? `${s}.events e ON e.stream = s.id AND e.id = $2 AND ${LIVE}`
      : `LATERAL (SELECT ${COLUMNS} FROM ${s}.events e WHERE e.stream = s.id AND e.subject = $2
                   ORDER BY e.id DESC LIMIT 1) e ON ${LIVE}`;
    const result = await db.query<EventRow>(
      `SELECT ${COLUMNS} FROM ${s}.streams s LEFT JOIN ${event} WHERE s.name = $1`,
      [stream, byId ? which.id : which.lastOn],
    );
    const row = result.rows[0];
    if (row === undefined) throw streamNotFound(stream);
    if (row.id === null) throw eventNotFound(stream, which);
    return storedEvent(row);
  } catch (err) {
    throw streamCallFailure(err, what, schema, stream, "nothing was changed", "nothing was changed");
  }
}

/** Options of {@link readEvents}. */
export interface ReadOptions {
  /** Only events on this subject (wildcards allowed). */
  readonly subject?: string;
  readonly signal?: AbortSignal;
  /** Events per query; {@link READ_PAGE} unless given. */
  readonly pageSize?: number;
}

/**
 * The events of `stream` stored when the iteration starts (on `subject`,
 * when given), oldest first, fetched `READ_PAGE` at a time by id; events
 * stored later are left out, and those deleted or expired before their page
 * is fetched too. `NOT_FOUND` when the stream is missing, or is deleted (or
 * deleted and created again) before the read ends; `ABORTED` when `signal`
 * aborts.
 */
export async function* readEvents(
  db: Database,
  schema: string,
  stream: string,
  options: ReadOptions = {},
): AsyncGenerator<StoredEvent> {
  const { subject, signal, pageSize = READ_PAGE } = options;
  const s = quoted(schema);
  const what = `read("${stream}"${subject === undefined ? "" : `, { subject: "${subject}" }`})`;
  const fail = (err: unknown) =>
    streamCallFailure(err, what, schema, stream, "nothing was changed", "nothing was changed");
  throwIfAborted(signal);
  let bounds: { id: number; last_id: string } | undefined;
  try {
    const found = await db.query<{ id: number; last_id: string }>(
      `SELECT id, last_id FROM ${s}.streams WHERE name = $1`,
      [stream],
    );
    bounds = found.rows[0];
  } catch (err) {
    throw fail(err);
  }
  if (bounds === undefined) throw streamNotFound(stream);
  const match =
    subject === undefined || subject === ">" ? "" : hasWildcard(subject) ? "AND e.subject ~ $5" : "AND e.subject = $5";
  const filter =
    subject === undefined || subject === ">" ? null : hasWildcard(subject) ? filterRegex([subject]) : subject;
  // The stream row by its id: one deleted and created again under the same name is another stream.
  const page = `SELECT ${COLUMNS} FROM ${s}.streams s LEFT JOIN LATERAL (
                  SELECT ${COLUMNS} FROM ${s}.events e
                   WHERE e.stream = s.id AND e.id > $2 AND e.id <= $3 AND ${LIVE} ${match}
                   ORDER BY e.id LIMIT $4) e ON true
                 WHERE s.id = $1 ORDER BY e.id`;
  const last = Number(bounds.last_id);
  let after = 0;
  while (after < last) {
    throwIfAborted(signal);
    let rows: EventRow[];
    try {
      const params: unknown[] = [bounds.id, after, last, pageSize];
      if (filter !== null) params.push(filter);
      rows = (await db.query<EventRow>(page, params)).rows;
    } catch (err) {
      throw fail(err);
    }
    if (rows.length === 0) throw streamNotFound(stream);
    for (const row of rows) {
      if (row.id === null) return;
      throwIfAborted(signal);
      yield storedEvent(row);
    }
    if (rows.length < pageSize) return;
    after = Number(rows[rows.length - 1]?.id);
  }
}

/**
 * Removes event `id` from `stream` (its unsettled deliveries go with it);
 * `NOT_FOUND` when there is no such live event, or no such stream.
 */
export async function deleteEvent(
  db: Database,
  schema: string,
  stream: string,
  id: number,
  signal?: AbortSignal,
): Promise<void> {
  throwIfAborted(signal);
  const what = `deleteEvent("${stream}", ${id})`;
  let deleted: boolean | undefined;
  try {
    const result = await db.query<{ deleted: boolean }>(`SELECT ${quoted(schema)}.delete_event($1, $2) AS deleted`, [
      stream,
      id,
    ]);
    deleted = result.rows[0]?.deleted;
  } catch (err) {
    throw streamCallFailure(
      err,
      what,
      schema,
      stream,
      "the event was not deleted",
      "the event may or may not have been deleted",
    );
  }
  if (deleted !== true) throw eventNotFound(stream, { id });
}
