/**
 * Purging a PostgreSQL stream, as nats-server 2.9's `PurgeEx` and the memory
 * engine's `purge()` do: all events, those on a subject, those below an id,
 * or all but the newest. The work is one call of the schema's `purge()`
 * function (see `sql/postgres/003_limits_and_reads.sql`), which also moves
 * consumers past the purged ids as the memory engine moves them, and deletes
 * the purged events' unsettled deliveries.
 *
 * @module
 */

import { throwIfAborted } from "../../internal/abort.js";
import type { PurgeOptions } from "../engine.js";
import { hasWildcard } from "../subjects.js";
import { filterRegex } from "./consumer-config.js";
import { type Database, quoted } from "./database.js";
import { streamCallFailure } from "./events.js";

/**
 * Removes the events `options` select from `stream`; returns how many
 * (expired events, removed on the way, are not counted).
 *
 * Without a subject (or with `>`): `upToId` removes the ids below it (past
 * the end, the next event stored gets `upToId`); `keepLast: n` keeps the ids
 * from `lastId - n + 1` on, unless the stream holds at most `n` events;
 * `keepLast: 0` keeps none. With a subject (wildcards allowed), only the
 * events on it go: those below `upToId`, or all but the `keepLast` newest.
 * An `upToId` of 1 removes nothing. `NOT_FOUND` when the stream is missing.
 */
export async function purgeStream(
  db: Database,
  schema: string,
  stream: string,
  options: PurgeOptions,
  signal?: AbortSignal,
): Promise<number> {
  throwIfAborted(signal);
  const { subject, keepLast, upToId } = options;
  const what = `purgeStream("${stream}")`;
  try {
    const result = await db.query<{ removed: string }>(
      `SELECT ${quoted(schema)}.purge($1, $2, $3, $4, $5) AS removed`,
      [
        stream,
        subject ?? null,
        subject !== undefined && subject !== ">" && hasWildcard(subject) ? filterRegex([subject]) : null,
        keepLast ?? null,
        upToId ?? null,
      ],
    );
    return Number(result.rows[0]?.removed ?? 0);
  } catch (err) {
    throw streamCallFailure(
      err,
      what,
      schema,
      stream,
      "nothing was purged",
      "the events may or may not have been purged",
    );
  }
}
