/**
 * Appends of one pool to one stream, made at once, go together: one
 * statement and one commit per batch (migration 005's append_many), with
 * every event's outcome its own, as one by one.
 */
import { describe, expect, it } from "vitest";
import { createAppender } from "../../src/engines/postgres/append.js";
import { quoted } from "../../src/engines/postgres/database.js";
import { ErrorCode, isWindshiftError } from "../../src/errors.js";
import { APPEND, outgoing, uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();

describe("append batches", () => {
  it("stores 400 concurrent appends with gapless ids in fewer transactions, each with its own outcome", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [`${name}.>`] });
    const appender = createAppender(env.pool, { schema: env.schema });
    // The first append reads the stream catalog; after it, appends go in the order they are made.
    expect((await appender.append(outgoing(`${name}.first`), APPEND)).id).toBe(1);
    const count = 400;
    const results = await Promise.allSettled(
      Array.from({ length: count }, (_, i) =>
        appender.append(
          outgoing(`${name}.${i % 4}`, {
            // Every tenth event repeats the key of the one before it; one in fifty has a check that fails.
            idempotencyKey: i % 10 === 9 ? `k${i - 1}` : `k${i}`,
            ...(i % 50 === 25 ? { expectedLastId: 0 } : {}),
          }),
          APPEND,
        ),
      ),
    );
    const stored = results.flatMap((r) => (r.status === "fulfilled" && !r.value.duplicate ? [r.value.id] : []));
    const duplicates = results.flatMap((r, i) => (r.status === "fulfilled" && r.value.duplicate ? [i] : []));
    const refused = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
    expect(refused.length).toBe(8);
    expect(refused.every((err) => isWindshiftError(err, ErrorCode.WrongSequence))).toBe(true);
    // A repeated key is a duplicate of the event stored just before it (the tenth events whose twin was refused aside).
    expect(duplicates.length).toBe(40);
    for (const i of duplicates) {
      const first = results[i - 1];
      const again = results[i];
      if (first?.status !== "fulfilled" || again?.status !== "fulfilled")
        throw new Error(`event ${i - 1} was not stored`);
      expect(again.value.id).toBe(first.value.id);
    }
    expect(stored.sort((a, b) => a - b)).toEqual(Array.from({ length: count - 48 }, (_, i) => i + 2));
    // In the order they were made: ids grow with the call's index.
    const ids = results.flatMap((r) => (r.status === "fulfilled" && !r.value.duplicate ? [r.value.id] : []));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const transactions = await env.pool.query<{ n: number }>(
      `SELECT count(DISTINCT e.xmin::text)::int AS n FROM ${quoted(env.schema)}.events e
         JOIN ${quoted(env.schema)}.streams s ON s.id = e.stream WHERE s.name = $1`,
      [name],
    );
    expect(transactions.rows[0]?.n).toBeLessThan(count / 4);
  });

  it("sends alone the append of a quiet stream, and nothing given up on before it went", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [`${name}.>`] });
    const appender = createAppender(env.pool, { schema: env.schema });
    expect(await appender.append(outgoing(`${name}.a`), APPEND)).toEqual({ id: 1, stream: name, duplicate: false });
    const aborted = new AbortController();
    const first = appender.append(outgoing(`${name}.a`), APPEND);
    const given = appender.append(outgoing(`${name}.a`), { ...APPEND, signal: aborted.signal });
    const third = appender.append(outgoing(`${name}.a`), APPEND);
    aborted.abort(new Error("changed my mind"));
    await expect(given).rejects.toMatchObject({ code: ErrorCode.Aborted });
    expect((await first).id).toBe(2);
    expect((await third).id).toBe(3);
    const count = await env.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${quoted(env.schema)}.events e
         JOIN ${quoted(env.schema)}.streams s ON s.id = e.stream WHERE s.name = $1`,
      [name],
    );
    expect(count.rows[0]?.n).toBe(3);
  });
});
