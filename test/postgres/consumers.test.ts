/**
 * Consumer rows: created at their start position, updated keeping their
 * position and start, ephemeral ones named by the engine, filters with
 * wildcards applied in SQL, state as the other engines report it, and
 * NOT_FOUND for what is missing.
 */
import { describe, expect, it } from "vitest";
import { createAppender } from "../../src/engines/postgres/append.js";
import { consumerState, deleteConsumer, ensureConsumer } from "../../src/engines/postgres/consumers.js";
import { quoted } from "../../src/engines/postgres/database.js";
import { claim, settle } from "../../src/engines/postgres/deliveries.js";
import { ErrorCode } from "../../src/errors.js";
import { type ConsumerOptions, resolveConsumerConfig } from "../../src/streams/consumers.js";
import { waitFor, windshiftError } from "../helpers.js";
import { APPEND, outgoing, uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();

const ensure = (stream: string, options: ConsumerOptions) =>
  ensureConsumer(env.pool, env.schema, stream, resolveConsumerConfig(stream, options));
const state = (stream: string, consumer: string) => consumerState(env.pool, env.schema, stream, consumer);

/** A stream capturing `<name>.>` with events on `subjects`, appended in order. */
async function streamWith(subjects: (name: string) => string[]): Promise<string> {
  const name = uniqueStream();
  await env.stream(name, { subjects: [`${name}.>`] });
  const appender = createAppender(env.pool, { schema: env.schema });
  for (const subject of subjects(name)) await appender.append(outgoing(subject), APPEND);
  return name;
}

describe("ensureConsumer", () => {
  it("creates a durable consumer, echoes its config, then updates it keeping its position and start", async () => {
    const name = await streamWith((n) => [`${n}.a`, `${n}.b`, `${n}.c`]);
    const wanted = resolveConsumerConfig(name, { name: "worker", from: { start: true }, processingTimeoutMs: 5_000 });
    const first = await ensureConsumer(env.pool, env.schema, name, wanted);
    expect(first).toEqual({ name: "worker", created: true, config: wanted });
    expect((await claim(env.pool, env.schema, name, "worker", 2)).map((d) => d.id)).toEqual([1, 2]);

    const second = await ensure(name, { name: "worker", from: { end: true }, processingTimeoutMs: 7_000 });
    expect(second.created).toBe(false);
    expect(second.config).toMatchObject({ from: { kind: "start" }, processingTimeoutMs: 7_000 });
    expect(await state(name, "worker")).toMatchObject({ lastDeliveredId: 2, unsettled: 2, pending: 1 });
    expect((await claim(env.pool, env.schema, name, "worker", 5)).map((d) => d.id)).toEqual([3]);
  });

  it("creates a durable consumer once when 6 sessions ensure it at once", async () => {
    const name = await streamWith((n) => [`${n}.a`]);
    const pools = Array.from({ length: 6 }, () => env.createPool({ max: 1 }));
    await Promise.all(pools.map(async (p) => (await p.connect()).release()));
    const config = resolveConsumerConfig(name, { name: "shared", from: { start: true } });
    const results = await Promise.all(pools.map((p) => ensureConsumer(p, env.schema, name, config)));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    for (const r of results) expect(r).toMatchObject({ name: "shared", config });
  });

  it("names an ephemeral consumer with 8 characters, keeping its config's name undefined", async () => {
    const name = await streamWith(() => []);
    const [a, b] = [await ensure(name, {}), await ensure(name, {})];
    expect(a.name).toMatch(/^[A-Za-z0-9]{8}$/);
    expect(b.name).not.toBe(a.name);
    expect(a).toMatchObject({ created: true, config: { name: undefined } });
    expect((await state(name, a.name)).config.name).toBeUndefined();
  });

  it("refuses a missing stream (NOT_FOUND) and a filter outside the stream's subjects (SERVER)", async () => {
    const missing = await windshiftError(ensure(uniqueStream("missing"), { name: "w" }));
    expect(missing.code).toBe(ErrorCode.NotFound);
    const name = await streamWith(() => []);
    const outside = await windshiftError(ensure(name, { name: "w", subjects: ["elsewhere.>"] }));
    expect(outside.code).toBe(ErrorCode.Server);
    expect(outside.message).toContain('consumer filter "elsewhere.>" is not within');
  });
});

describe("start positions", () => {
  it("starts at the start, the end, an id (one beyond the end: the next event), or a time", async () => {
    const name = await streamWith((n) => [`${n}.a`, `${n}.b`]);
    const storedAt = async (id: number) =>
      (
        await env.pool.query<{ at: Date }>(
          `SELECT e.stored_at AS at FROM ${quoted(env.schema)}.events e JOIN ${quoted(env.schema)}.streams s
              ON s.id = e.stream WHERE s.name = $1 AND e.id = $2`,
          [name, id],
        )
      ).rows[0]?.at as Date;
    // Event 3 is stored in a later millisecond than event 2 (a Date has milliseconds, PostgreSQL microseconds).
    const second = await storedAt(2);
    await waitFor(
      async () => (await env.pool.query("SELECT clock_timestamp() AS now")).rows[0].now > second.getTime() + 1,
    );
    await createAppender(env.pool, { schema: env.schema }).append(outgoing(`${name}.c`), APPEND);
    const third = await storedAt(3);
    const starts: [string, NonNullable<ConsumerOptions["from"]>, number][] = [
      ["start", { start: true }, 0],
      ["end", { end: true }, 3],
      ["id", { id: 2 }, 1],
      ["beyond", { id: 99 }, 3],
      ["time", { time: third }, 2],
    ];
    for (const [consumer, from, position] of starts) {
      await ensure(name, { name: consumer, from });
      expect(await state(name, consumer)).toMatchObject({ lastDeliveredId: position, ackFloor: position });
    }
    await createAppender(env.pool, { schema: env.schema }).append(outgoing(`${name}.d`), APPEND);
    const firsts = [];
    for (const [consumer] of starts) firsts.push((await claim(env.pool, env.schema, name, consumer, 1))[0]?.id);
    expect(firsts).toEqual([1, 4, 2, 4, 3]);
  });
});

describe("filters", () => {
  it("delivers only subjects matching a filter: * is one token, > one or more", async () => {
    const name = await streamWith((n) => [
      `${n}.a.x`, // 1: a.*
      `${n}.a.x.y`, // 2: no (* is one token)
      `${n}.b.x`, // 3: b.>
      `${n}.b.x.y`, // 4: b.>
      `${n}.b`, // 5: no (> needs a token)
      `${n}.c.x`, // 6: no
      `${n}.a.xy`, // 7: a.*
    ]);
    await ensure(name, { name: "f", from: { start: true }, subjects: [`${name}.a.*`, `${name}.b.>`] });
    expect(await state(name, "f")).toMatchObject({ pending: 4, lastDeliveredId: 0 });
    expect((await claim(env.pool, env.schema, name, "f", 3)).map((d) => d.id)).toEqual([1, 3, 4]);
    expect(await state(name, "f")).toMatchObject({ pending: 1, lastDeliveredId: 4, unsettled: 3 });
    const rest = await claim(env.pool, env.schema, name, "f", 10);
    expect(rest.map((d) => [d.id, d.subject])).toEqual([[7, `${name}.a.xy`]]);
    // Fewer matched than asked for: the position moves to the stream's last id.
    expect(await state(name, "f")).toMatchObject({ pending: 0, lastDeliveredId: 7, unsettled: 4 });
  });
});

describe("consumerState and deleteConsumer", () => {
  it("says NOT_FOUND for a missing consumer or stream, and after a delete (claims and settles too)", async () => {
    const name = await streamWith((n) => [`${n}.a`]);
    await ensure(name, { name: "gone", from: { start: true } });
    await claim(env.pool, env.schema, name, "gone", 1);
    await deleteConsumer(env.pool, env.schema, name, "gone");
    const missing = [
      await windshiftError(state(name, "gone")),
      await windshiftError(claim(env.pool, env.schema, name, "gone", 1)),
      await windshiftError(settle(env.pool, env.schema, name, "gone", 1, "ack")),
      await windshiftError(deleteConsumer(env.pool, env.schema, name, "gone")),
    ];
    expect(missing.map((e) => e.code)).toEqual(Array(4).fill(ErrorCode.NotFound));
    expect(missing[0]?.message).toContain(`consumer "gone" of stream "${name}" not found`);
    const noStream = await windshiftError(state(uniqueStream("nostream"), "w"));
    expect(noStream.code).toBe(ErrorCode.NotFound);
    expect(noStream.message).toMatch(/^stream "nostream_\w+" not found/);
    const left = await env.pool.query(
      `SELECT count(*)::int AS n FROM ${quoted(env.schema)}.deliveries d
         JOIN ${quoted(env.schema)}.streams s ON s.id = d.stream WHERE s.name = $1`,
      [name],
    );
    expect(left.rows[0].n).toBe(0);
  });
});
