/**
 * Purging a memory stream, as nats-server 2.9's `PurgeEx` purges one: all
 * events, those on a subject, those below an id, or all but the newest.
 *
 * @module
 */

import type { PurgeOptions } from "../engine.js";
import type { MemoryConsumer } from "./consumer.js";
import type { MemoryStream } from "./stream.js";

/**
 * Removes the events `options` select from `stream`; returns how many.
 *
 * Without a subject (or with `>`), as nats-server does:
 * - `upToId` removes the ids below it; past the end, the next event stored
 *   gets `upToId` (ids are never reused, but may jump).
 * - `keepLast: n` keeps the ids from `lastId - n + 1` on, unless the stream
 *   holds at most `n` events: with gaps (deleted events), fewer than `n`
 *   events may stay, as on the server. `keepLast: 0` keeps none.
 *
 * With a subject (wildcards allowed), only the events on it go: those below
 * `upToId`, or all but the `keepLast` newest of them.
 *
 * Consumers whose position now points at removed ids move past them, so that
 * their ack floor and last delivered id read as on the server, which moves
 * every consumer on a plain purge; only the unfiltered ones on a purge with
 * `keepLast`, `upToId` or `>`; and, on a subject purge, those filtered on
 * that subject (to the first event left on it). nats-server 2.9.10 also
 * moves consumers with a wider filter on a subject purge, skipping events
 * on other subjects, and forgets every unsettled event of a moved consumer,
 * so that those not purged are never redelivered: neither is done here.
 *
 * An `upToId` of 1 removes nothing, as the seam says; nats-server 2.9.10
 * takes `seq: 1` for no bound and purges everything (on the subject).
 */
export function purge(stream: MemoryStream, consumers: readonly MemoryConsumer[], options: PurgeOptions): number {
  const { subject, keepLast, upToId } = options;
  if (subject === undefined || subject === ">") {
    let removed = 0;
    if (!keepLast) removed = stream.removeBelow(upToId ?? stream.lastId + 1);
    else if (keepLast < stream.count) removed = stream.removeBelow(stream.lastId - keepLast + 1);
    const plain = subject === undefined && keepLast === undefined && upToId === undefined;
    for (const consumer of consumers) {
      if (plain || consumer.config.subjects.length === 0) consumer.passPurged(stream.firstId());
    }
    return removed;
  }
  let ids = stream.idsMatching(subject);
  if (keepLast !== undefined) ids = ids.slice(0, Math.max(0, ids.length - keepLast));
  else if (upToId !== undefined) ids = ids.filter((id) => id < upToId);
  let removed = 0;
  for (const id of ids) if (stream.delete(id)) removed++;
  const filtered = consumers.filter((c) => c.config.subjects.length === 1 && c.config.subjects[0] === subject);
  if (filtered.length > 0) {
    const first = stream.idsMatching(subject)[0] ?? stream.lastId + 1;
    for (const consumer of filtered) consumer.passPurged(first);
  }
  return removed;
}
