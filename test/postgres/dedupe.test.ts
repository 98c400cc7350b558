/**
 * Deduplication by idempotency key within the stream's window, measured on
 * the database's clock: a key seen within the window is not stored again,
 * and is stored again once the window has passed.
 */
import { describe, expect, it } from "vitest";
import type { Appended } from "../../src/engines/engine.js";
import { createAppender } from "../../src/engines/postgres/append.js";
import { quoted } from "../../src/engines/postgres/database.js";
import { ensureStream } from "../../src/engines/postgres/streams.js";
import { resolveStreamConfig } from "../../src/streams/streams.js";
import { waitFor } from "../helpers.js";
import { APPEND, outgoing, uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();

/** When the database stored event `id` of stream `name` (epoch milliseconds, as PostgreSQL's clock has it). */
async function storedAt(name: string, id: number): Promise<number> {
  const { rows } = await env.pool.query<{ stored_at: Date }>(
    `SELECT e.stored_at FROM ${quoted(env.schema)}.events e JOIN ${quoted(env.schema)}.streams s ON s.id = e.stream
      WHERE s.name = $1 AND e.id = $2`,
    [name, id],
  );
  return (rows[0] as { stored_at: Date }).stored_at.getTime();
}

describe("deduplication", () => {
  it("returns the first event's id for a key seen within the window, whatever was stored since", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [`${name}.*`], deduplicationWindowMs: 60_000 });
    const appender = createAppender(env.pool, { schema: env.schema });
    const first = await appender.append(outgoing(`${name}.a`, { idempotencyKey: "k" }), APPEND);
    await appender.append(outgoing(`${name}.b`, { idempotencyKey: "other" }), APPEND);
    await appender.append(outgoing(`${name}.c`), APPEND);
    // Another subject of the stream, and checks that would fail: deduplication comes first.
    const again = await appender.append(outgoing(`${name}.z`, { idempotencyKey: "k", expectedLastId: 0 }), APPEND);
    expect(first).toEqual({ id: 1, stream: name, duplicate: false });
    expect(again).toEqual({ id: 1, stream: name, duplicate: true });
    // The duplicate took no id.
    expect(await appender.append(outgoing(`${name}.c`), APPEND)).toMatchObject({ id: 4, duplicate: false });
  });

  it("keeps keys per stream: the same key in another stream is stored", async () => {
    const [one, two] = [uniqueStream(), uniqueStream()];
    await env.stream(one, { subjects: [one] });
    await env.stream(two, { subjects: [two] });
    const appender = createAppender(env.pool, { schema: env.schema });
    await appender.append(outgoing(one, { idempotencyKey: "shared" }), APPEND);
    const other = await appender.append(outgoing(two, { idempotencyKey: "shared" }), APPEND);
    expect(other).toEqual({ id: 1, stream: two, duplicate: false });
  });

  it("stores a key again once the window (200 ms) has passed on the database's clock", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [name], deduplicationWindowMs: 200 });
    const appender = createAppender(env.pool, { schema: env.schema });
    const first = await appender.append(outgoing(name, { idempotencyKey: "k" }), APPEND);
    expect(first).toEqual({ id: 1, stream: name, duplicate: false });

    const seen: Appended[] = [];
    const stored = await waitFor(
      async () => {
        const result = await appender.append(outgoing(name, { idempotencyKey: "k" }), APPEND);
        seen.push(result);
        return result.duplicate ? undefined : result;
      },
      { timeoutMs: 5_000, intervalMs: 20, what: "the key to be stored again" },
    );
    expect(stored).toEqual({ id: 2, stream: name, duplicate: false });
    // Every answer before it was the first event's id …
    for (const early of seen.slice(0, -1)) expect(early).toEqual({ id: 1, stream: name, duplicate: true });
    // … and it came no earlier than the window allows.
    expect((await storedAt(name, 2)) - (await storedAt(name, 1))).toBeGreaterThanOrEqual(200);
  });

  it("does not deduplicate in a stream whose window is 0", async () => {
    const name = uniqueStream();
    const config = { ...resolveStreamConfig(name, { subjects: [name] }), deduplicationWindowMs: 0 };
    await ensureStream(env.pool, env.schema, config);
    const appender = createAppender(env.pool, { schema: env.schema });
    await appender.append(outgoing(name, { idempotencyKey: "k" }), APPEND);
    expect(await appender.append(outgoing(name, { idempotencyKey: "k" }), APPEND)).toEqual({
      id: 2,
      stream: name,
      duplicate: false,
    });
  });
});
