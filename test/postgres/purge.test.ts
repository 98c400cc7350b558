/**
 * Purging a PostgreSQL stream (migration 003's purge()): every PurgeOptions
 * combination, checked for its own values and against the memory engine
 * purging the same stream: what is removed, the contents after, the next id,
 * and where consumers' positions move; and the deliveries of purged events.
 */
import { describe, expect, it } from "vitest";
import type { Engine, PurgeOptions, StreamContents } from "../../src/engines/engine.js";
import { createMemoryEngine } from "../../src/engines/memory/engine.js";
import { createAppender } from "../../src/engines/postgres/append.js";
import { consumerState, ensureConsumer } from "../../src/engines/postgres/consumers.js";
import { streamContents } from "../../src/engines/postgres/contents.js";
import { claim } from "../../src/engines/postgres/deliveries.js";
import { readEvents } from "../../src/engines/postgres/events.js";
import { purgeStream } from "../../src/engines/postgres/purge.js";
import { ErrorCode } from "../../src/errors.js";
import { realClock } from "../../src/internal/clock.js";
import { resolveConsumerConfig } from "../../src/streams/consumers.js";
import { resolveStreamConfig } from "../../src/streams/streams.js";
import { windshiftError } from "../helpers.js";
import { APPEND, outgoing, uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();

/** Subjects (suffixes) of the events each twin starts with: ids 1 to 8. */
const SUFFIXES = ["a.1", "b.1", "a.2", "a.1", "b.2", "a.1", "b.1", "a.2"];

/** Consumers made on both engines before the purge: name → filter subjects (suffixes). */
const CONSUMERS: Record<string, string[]> = { all: [], a1: ["a.1"], wide: ["a.*"], b1: ["b.1"] };

function comparable(contents: StreamContents) {
  const { firstTime, lastTime, ...rest } = contents;
  return { ...rest, hasFirstTime: firstTime !== undefined, hasLastTime: lastTime !== undefined };
}

/**
 * Purges a stream holding SUFFIXES on PostgreSQL and on the memory engine
 * with `options` (a subject given as a suffix), checks both agree on the
 * count, contents, ids left, the next id and each consumer's position, and
 * returns PostgreSQL's.
 */
async function purgeBoth(options: Partial<PurgeOptions>) {
  const name = uniqueStream();
  const stream = { subjects: [`${name}.>`] };
  await env.stream(name, stream);
  const memory: Engine = createMemoryEngine({ clock: realClock });
  await memory.ensureStream(resolveStreamConfig(name, stream), undefined);
  const appender = createAppender(env.pool, { schema: env.schema });
  for (const s of SUFFIXES) {
    await appender.append(outgoing(`${name}.${s}`), APPEND);
    await memory.append(outgoing(`${name}.${s}`), APPEND);
  }
  for (const [consumer, filters] of Object.entries(CONSUMERS)) {
    const config = resolveConsumerConfig(name, {
      name: consumer,
      subjects: filters.map((f) => `${name}.${f}`),
      from: { start: true },
    });
    await ensureConsumer(env.pool, env.schema, name, config);
    await memory.ensureConsumer(name, config, undefined);
  }
  const full: PurgeOptions = {
    subject: options.subject === undefined || options.subject === ">" ? options.subject : `${name}.${options.subject}`,
    keepLast: options.keepLast,
    upToId: options.upToId,
  };
  const removed = await purgeStream(env.pool, env.schema, name, full);
  expect(removed).toBe(await memory.purgeStream(name, full, undefined));
  const contents = await streamContents(env.pool, env.schema, name);
  expect(comparable(contents)).toEqual(comparable((await memory.streamState(name, undefined)).contents));
  const ids: number[] = [];
  for await (const e of readEvents(env.pool, env.schema, name)) ids.push(e.id);
  const memoryIds: number[] = [];
  for await (const e of memory.read(name, {})) memoryIds.push(e.id);
  expect(ids).toEqual(memoryIds);
  const positions: Record<string, number> = {};
  for (const consumer of Object.keys(CONSUMERS)) {
    const onPostgres = await consumerState(env.pool, env.schema, name, consumer);
    const onMemory = await memory.consumerState(name, consumer, undefined);
    const pick = (s: typeof onMemory) => ({
      lastDeliveredId: s.lastDeliveredId,
      ackFloor: s.ackFloor,
      pending: s.pending,
    });
    expect({ consumer, ...pick(onPostgres) }).toEqual({ consumer, ...pick(onMemory) });
    positions[consumer] = onPostgres.lastDeliveredId;
  }
  // The next id, after the purge.
  const next = await appender.append(outgoing(`${name}.z`), APPEND);
  expect(next.id).toBe((await memory.append(outgoing(`${name}.z`), APPEND)).id);
  await memory.close();
  return { name, removed, contents, ids, positions, next: next.id };
}

describe("purgeStream", () => {
  it("without options removes everything and moves every consumer to the end", async () => {
    const r = await purgeBoth({});
    expect(r.removed).toBe(8);
    expect(r.contents).toMatchObject({ events: 0, bytes: 0, firstId: 9, lastId: 8, subjects: 0, consumers: 4 });
    expect(r.ids).toEqual([]);
    expect(r.positions).toEqual({ all: 8, a1: 8, wide: 8, b1: 8 });
    expect(r.next).toBe(9);
  });

  it("with upToId removes the ids below it, moving only the unfiltered consumer", async () => {
    const r = await purgeBoth({ upToId: 4 });
    expect(r.removed).toBe(3);
    expect(r.ids).toEqual([4, 5, 6, 7, 8]);
    expect(r.contents).toMatchObject({ events: 5, firstId: 4, lastId: 8 });
    expect(r.positions).toEqual({ all: 3, a1: 0, wide: 0, b1: 0 });
  });

  it("with upToId past the end makes it the next id", async () => {
    const r = await purgeBoth({ upToId: 20 });
    expect(r.removed).toBe(8);
    expect(r.contents).toMatchObject({ events: 0, firstId: 20, lastId: 19 });
    expect(r.next).toBe(20);
  });

  it("with upToId 1 removes nothing", async () => {
    const r = await purgeBoth({ upToId: 1 });
    expect(r.removed).toBe(0);
    expect(r.ids).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("with keepLast keeps the newest ids, or everything when the stream holds no more; keepLast 0 keeps none", async () => {
    const three = await purgeBoth({ keepLast: 3 });
    expect(three.removed).toBe(5);
    expect(three.ids).toEqual([6, 7, 8]);
    expect(three.positions.all).toBe(5);
    const many = await purgeBoth({ keepLast: 8 });
    expect(many.removed).toBe(0);
    expect(many.ids).toHaveLength(8);
    const none = await purgeBoth({ keepLast: 0 });
    expect(none.removed).toBe(8);
    expect(none.contents).toMatchObject({ events: 0, firstId: 9 });
  });

  it('with subject ">" purges like no subject, but moves only unfiltered consumers', async () => {
    const r = await purgeBoth({ subject: ">", keepLast: 2 });
    expect(r.ids).toEqual([7, 8]);
    expect(r.positions).toEqual({ all: 6, a1: 0, wide: 0, b1: 0 });
  });

  it("with a literal subject removes its events only, moving consumers filtered on exactly it", async () => {
    const r = await purgeBoth({ subject: "a.1" });
    expect(r.removed).toBe(3);
    expect(r.ids).toEqual([2, 3, 5, 7, 8]);
    expect(r.contents).toMatchObject({ events: 5, firstId: 2, lastId: 8, subjects: 3 });
    expect(r.positions).toEqual({ all: 0, a1: 8, wide: 0, b1: 0 });
  });

  it("with a subject and keepLast keeps its newest; with upToId removes its events below it", async () => {
    const keep = await purgeBoth({ subject: "a.1", keepLast: 1 });
    expect(keep.ids).toEqual([2, 3, 5, 6, 7, 8]);
    expect(keep.positions.a1).toBe(5);
    const below = await purgeBoth({ subject: "b.1", upToId: 7 });
    expect(below.removed).toBe(1);
    expect(below.ids).toEqual([1, 3, 4, 5, 6, 7, 8]);
    expect(below.positions.b1).toBe(6);
  });

  it("with a wildcard subject removes the events it matches", async () => {
    const r = await purgeBoth({ subject: "a.*" });
    expect(r.removed).toBe(5);
    expect(r.ids).toEqual([2, 5, 7]);
    expect(r.positions).toEqual({ all: 0, a1: 0, wide: 8, b1: 0 });
    const some = await purgeBoth({ subject: "*.2", upToId: 8 });
    expect(some.ids).toEqual([1, 2, 4, 6, 7, 8]);
  });

  it("removes the deliveries of purged events, which moves the ack floor, and leaves the others", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [`${name}.>`] });
    const appender = createAppender(env.pool, { schema: env.schema });
    for (const s of SUFFIXES) await appender.append(outgoing(`${name}.${s}`), APPEND);
    await ensureConsumer(
      env.pool,
      env.schema,
      name,
      resolveConsumerConfig(name, { name: "w", subjects: [`${name}.a.*`], from: { start: true } }),
    );
    expect((await claim(env.pool, env.schema, name, "w", 3)).map((d) => d.id)).toEqual([1, 3, 4]);
    expect(await consumerState(env.pool, env.schema, name, "w")).toMatchObject({ unsettled: 3, ackFloor: 0 });

    expect(
      await purgeStream(env.pool, env.schema, name, { subject: `${name}.a.1`, keepLast: undefined, upToId: undefined }),
    ).toBe(3);
    expect(await consumerState(env.pool, env.schema, name, "w")).toMatchObject({
      unsettled: 1,
      ackFloor: 2,
      lastDeliveredId: 4,
      pending: 1,
    });
    expect((await claim(env.pool, env.schema, name, "w", 5)).map((d) => d.id)).toEqual([8]);
  });

  it("fails with NOT_FOUND for a missing stream", async () => {
    const err = await windshiftError(
      purgeStream(env.pool, env.schema, "absent", { subject: undefined, keepLast: undefined, upToId: undefined }),
    );
    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toContain('stream "absent" not found');
  });
});
