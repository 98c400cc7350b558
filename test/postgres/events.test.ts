/**
 * Reading and deleting a PostgreSQL stream's events: getEvent by id and by
 * subject, reads in pages (what they include, subjects with wildcards, a
 * stream deleted mid-read), deleteEvent, and the stream's contents after
 * each, worded as the memory engine words its failures.
 */
import { describe, expect, it } from "vitest";
import type { StoredEvent } from "../../src/engines/engine.js";
import { createMemoryEngine } from "../../src/engines/memory/engine.js";
import { createAppender } from "../../src/engines/postgres/append.js";
import { streamContents, streamState, streamStates } from "../../src/engines/postgres/contents.js";
import { deleteEvent, getEvent, READ_PAGE, readEvents } from "../../src/engines/postgres/events.js";
import { deleteStream } from "../../src/engines/postgres/streams.js";
import { ErrorCode } from "../../src/errors.js";
import { realClock } from "../../src/internal/clock.js";
import { windshiftError } from "../helpers.js";
import { streamConfig } from "../unit/engine-support.js";
import { APPEND, outgoing, uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();

/** A stream capturing `<name>.>` with one event per subject suffix, appended in order. */
async function streamWith(suffixes: string[]): Promise<string> {
  const name = uniqueStream();
  await env.stream(name, { subjects: [`${name}.>`] });
  const appender = createAppender(env.pool, { schema: env.schema });
  for (const s of suffixes) await appender.append(outgoing(`${name}.${s}`), APPEND);
  return name;
}

async function readAll(name: string, options: { subject?: string; pageSize?: number } = {}): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  for await (const e of readEvents(env.pool, env.schema, name, options)) events.push(e);
  return events;
}

/** The memory engine's error for the same call on a missing stream / event. */
async function memoryError(call: (memory: ReturnType<typeof createMemoryEngine>) => Promise<unknown>) {
  const memory = createMemoryEngine({ clock: realClock });
  await memory.ensureStream(streamConfig("present", { deduplicationWindowMs: 0 }), undefined);
  const err = await windshiftError(call(memory));
  await memory.close();
  return { code: err.code, message: err.message };
}

describe("getEvent", () => {
  it("returns an event by id with its subject, payload, headers and time", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [`${name}.>`] });
    const before = Date.now();
    await createAppender(env.pool, { schema: env.schema }).append(
      outgoing(`${name}.a`, { headers: [["X-A", "1"]], idempotencyKey: "k" }),
      APPEND,
    );
    const event = await getEvent(env.pool, env.schema, name, { id: 1 });
    expect(event).toMatchObject({
      id: 1,
      subject: `${name}.a`,
      headers: [
        ["X-A", "1"],
        ["Nats-Msg-Id", "k"],
      ],
    });
    expect(new TextDecoder().decode(event.payload)).toBe(`payload of ${name}.a`);
    expect(event.payload.constructor).toBe(Uint8Array);
    expect(Math.abs(event.time - before)).toBeLessThan(5_000);
  });

  it("returns the last event on a subject; NOT_FOUND for a missing id, subject or stream, in the memory engine's words", async () => {
    const name = await streamWith(["a", "b", "a", "c"]);
    expect((await getEvent(env.pool, env.schema, name, { lastOn: `${name}.a` })).id).toBe(3);
    expect((await getEvent(env.pool, env.schema, name, { lastOn: `${name}.c` })).id).toBe(4);

    const noId = await windshiftError(getEvent(env.pool, env.schema, name, { id: 9 }));
    expect(noId.code).toBe(ErrorCode.NotFound);
    expect(noId.message).toContain(`has no event 9`);
    const noSubject = await windshiftError(getEvent(env.pool, env.schema, name, { lastOn: `${name}.zz` }));
    expect(noSubject.code).toBe(ErrorCode.NotFound);

    const missing = await windshiftError(getEvent(env.pool, env.schema, "absent", { id: 1 }));
    expect({ code: missing.code, message: missing.message }).toEqual(
      await memoryError((m) => m.getEvent("absent", { id: 1 }, undefined)),
    );
    const memoryNoId = await memoryError((m) => m.getEvent("present", { id: 9 }, undefined));
    expect(noId.message).toBe(memoryNoId.message.replaceAll('"present"', `"${name}"`));
  });
});

describe("readEvents", () => {
  it("reads every event oldest first across page boundaries, leaving out those stored after it started", async () => {
    const count = READ_PAGE + 44;
    const name = uniqueStream();
    await env.stream(name, { subjects: [`${name}.>`] });
    const appender = createAppender(env.pool, { schema: env.schema });
    for (let i = 0; i < count; i++) await appender.append(outgoing(`${name}.${i % 3}`), APPEND);

    const ids: number[] = [];
    for await (const e of readEvents(env.pool, env.schema, name)) {
      ids.push(e.id);
      // Stored during the read: not included.
      if (e.id === 10) await appender.append(outgoing(`${name}.late`), APPEND);
    }
    expect(ids).toEqual(Array.from({ length: count }, (_, i) => i + 1));

    const small = await readAll(name, { pageSize: 7 });
    expect(small.map((e) => e.id)).toEqual(Array.from({ length: count + 1 }, (_, i) => i + 1));
    expect(small[0]?.subject).toBe(`${name}.0`);
  });

  it("reads the events on a literal subject, or on a wildcard, skipping deleted ones", async () => {
    const name = await streamWith(["a.x", "b.x", "a.y", "a.x", "b.y"]);
    await deleteEvent(env.pool, env.schema, name, 4);
    expect((await readAll(name, { subject: `${name}.a.x` })).map((e) => e.id)).toEqual([1]);
    expect((await readAll(name, { subject: `${name}.a.*`, pageSize: 1 })).map((e) => e.id)).toEqual([1, 3]);
    expect((await readAll(name, { subject: `${name}.*.y` })).map((e) => e.id)).toEqual([3, 5]);
    expect((await readAll(name, { subject: ">" })).map((e) => e.id)).toEqual([1, 2, 3, 5]);
    expect(await readAll(name, { subject: `${name}.none` })).toEqual([]);
  });

  it("fails with NOT_FOUND for a missing stream, and for one deleted mid-read", async () => {
    const missing = await windshiftError(readAll("absent"));
    const memory = createMemoryEngine({ clock: realClock });
    const onMemory = await windshiftError(async () => {
      for await (const _ of memory.read("absent", {})) {
        // nothing
      }
    });
    await memory.close();
    expect({ code: missing.code, message: missing.message }).toEqual({
      code: onMemory.code,
      message: onMemory.message,
    });

    const name = await streamWith(["a", "b", "c", "d", "e"]);
    const seen: number[] = [];
    const failed = await windshiftError(async () => {
      for await (const e of readEvents(env.pool, env.schema, name, { pageSize: 2 })) {
        seen.push(e.id);
        if (e.id === 1) {
          await deleteStream(env.pool, env.schema, name);
          // Created again under the same name: another stream, which the read must not continue with.
          await env.stream(name, { subjects: [`${name}.>`] });
          await createAppender(env.pool, { schema: env.schema }).append(outgoing(`${name}.a`), APPEND);
        }
      }
    });
    expect(failed.code).toBe(ErrorCode.NotFound);
    expect(failed.message).toContain(`stream "${name}" not found`);
    expect(seen).toEqual([1, 2]);
  });

  it("stops with ABORTED when its signal aborts", async () => {
    const name = await streamWith(["a", "b", "c"]);
    const controller = new AbortController();
    const seen: number[] = [];
    const failed = await windshiftError(async () => {
      for await (const e of readEvents(env.pool, env.schema, name, { signal: controller.signal })) {
        seen.push(e.id);
        controller.abort();
      }
    });
    expect(failed.code).toBe(ErrorCode.Aborted);
    expect(seen).toEqual([1]);
  });
});

describe("deleteEvent", () => {
  it("removes one event, which the contents, reads and getEvent then leave out", async () => {
    const name = await streamWith(["a", "b", "a"]);
    const full = await streamContents(env.pool, env.schema, name);
    expect(full).toMatchObject({ events: 3, firstId: 1, lastId: 3, subjects: 2, consumers: 0 });

    await deleteEvent(env.pool, env.schema, name, 2);
    const after = await streamContents(env.pool, env.schema, name);
    expect(after).toMatchObject({ events: 2, firstId: 1, lastId: 3, subjects: 1 });
    expect(after.bytes).toBe((full.bytes / 3) * 2);
    expect((await readAll(name)).map((e) => e.id)).toEqual([1, 3]);
    expect((await windshiftError(getEvent(env.pool, env.schema, name, { id: 2 }))).code).toBe(ErrorCode.NotFound);

    await deleteEvent(env.pool, env.schema, name, 1);
    expect(await streamContents(env.pool, env.schema, name)).toMatchObject({ events: 1, firstId: 3, lastId: 3 });
    await deleteEvent(env.pool, env.schema, name, 3);
    const empty = await streamContents(env.pool, env.schema, name);
    expect(empty).toMatchObject({ events: 0, bytes: 0, firstId: 4, lastId: 3, subjects: 0 });
    expect(empty.firstTime).toBeUndefined();
    expect(empty.lastTime).toBeUndefined();
  });

  it("fails with NOT_FOUND for an event not there and for a missing stream, in the memory engine's words", async () => {
    const name = await streamWith(["a"]);
    await deleteEvent(env.pool, env.schema, name, 1);
    const again = await windshiftError(deleteEvent(env.pool, env.schema, name, 1));
    const onMemory = await memoryError((m) => m.deleteEvent("present", 1, undefined));
    expect(again.code).toBe(ErrorCode.NotFound);
    expect(again.message).toBe(onMemory.message.replaceAll('"present"', `"${name}"`));

    const missing = await windshiftError(deleteEvent(env.pool, env.schema, "absent", 1));
    expect({ code: missing.code, message: missing.message }).toEqual(
      await memoryError((m) => m.deleteEvent("absent", 1, undefined)),
    );
  });
});

describe("streamStates", () => {
  it("gives a new stream's config and contents: ids 0, no times; then first and last times once stored", async () => {
    const name = uniqueStream();
    const config = await env.stream(name, { subjects: [`${name}.>`], maxEvents: 10 });
    const fresh = await streamState(env.pool, env.schema, name);
    expect(fresh).toEqual({
      config,
      contents: {
        events: 0,
        bytes: 0,
        firstId: 0,
        firstTime: undefined,
        lastId: 0,
        lastTime: undefined,
        subjects: 0,
        consumers: 0,
      },
    });
    const appender = createAppender(env.pool, { schema: env.schema });
    await appender.append(outgoing(`${name}.a`), APPEND);
    await appender.append(outgoing(`${name}.b`), APPEND);
    const first = await getEvent(env.pool, env.schema, name, { id: 1 });
    const last = await getEvent(env.pool, env.schema, name, { id: 2 });
    expect((await streamState(env.pool, env.schema, name)).contents).toMatchObject({
      events: 2,
      firstId: 1,
      firstTime: first.time,
      lastId: 2,
      lastTime: last.time,
      subjects: 2,
    });
    // The last time stays the last stored event's while others are left.
    await deleteEvent(env.pool, env.schema, name, 2);
    expect((await streamState(env.pool, env.schema, name)).contents.lastTime).toBe(last.time);

    const missing = await windshiftError(streamState(env.pool, env.schema, "absent"));
    expect(missing.code).toBe(ErrorCode.NotFound);
    const all = await streamStates(env.pool, env.schema);
    expect(all.map((s) => s.config.name)).toContain(name);
    expect(all.map((s) => s.config.name)).toEqual([...all.map((s) => s.config.name)].sort());
  });
});
