/**
 * Stream limits on PostgreSQL (migration 003): every limit and discard
 * policy, byte accounting, expiry by maxAgeMs and the wake-up NOTIFY, each
 * checked for its own values and against the memory engine doing the same.
 */
import pg from "pg";
import { describe, expect, it } from "vitest";
import type { Engine, OutgoingEvent, StreamContents } from "../../src/engines/engine.js";
import { createMemoryEngine } from "../../src/engines/memory/engine.js";
import { createAppender } from "../../src/engines/postgres/append.js";
import { streamContents } from "../../src/engines/postgres/contents.js";
import { quoted } from "../../src/engines/postgres/database.js";
import { getEvent, readEvents } from "../../src/engines/postgres/events.js";
import { ErrorCode, isWindshiftError } from "../../src/errors.js";
import { realClock } from "../../src/internal/clock.js";
import { resolveStreamConfig, type StreamOptions } from "../../src/streams/streams.js";
import { waitFor, windshiftError } from "../helpers.js";
import { APPEND, outgoing, POSTGRES_URL, uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();

type Outcome = { id: number } | { code: string; message: string };

/** Contents without the times, which differ between two engines' clocks. */
function comparable(contents: StreamContents) {
  const { firstTime, lastTime, ...rest } = contents;
  return { ...rest, hasFirstTime: firstTime !== undefined, hasLastTime: lastTime !== undefined };
}

/** The same stream on PostgreSQL and on the memory engine, appended to alike. */
async function twin(options: Omit<StreamOptions, "subjects">) {
  const name = uniqueStream();
  const all = { subjects: [`${name}.>`], ...options };
  await env.stream(name, all);
  const memory: Engine = createMemoryEngine({ clock: realClock });
  await memory.ensureStream(resolveStreamConfig(name, all), undefined);
  const appender = createAppender(env.pool, { schema: env.schema });
  const outcome = async (work: Promise<{ id: number }>): Promise<Outcome> => {
    try {
      return { id: (await work).id };
    } catch (err) {
      if (!isWindshiftError(err)) throw err;
      return { code: err.code, message: err.message };
    }
  };
  return {
    name,
    /** Appends to both; expects the same outcome and returns it. */
    async append(subject: string, extra: Partial<OutgoingEvent> = {}): Promise<Outcome> {
      const event = outgoing(`${name}.${subject}`, extra);
      const onPostgres = await outcome(appender.append(event, APPEND));
      const onMemory = await outcome(memory.append(event, APPEND));
      expect(onPostgres).toEqual(onMemory);
      return onPostgres;
    },
    /** PostgreSQL's contents, after checking they are the memory engine's. */
    async contents(): Promise<StreamContents> {
      const contents = await streamContents(env.pool, env.schema, name);
      const memoryContents = (await memory.streamState(name, undefined)).contents;
      expect(comparable(contents)).toEqual(comparable(memoryContents));
      return contents;
    },
    /** The ids read back, the same on both. */
    async ids(): Promise<number[]> {
      const ids: number[] = [];
      for await (const e of readEvents(env.pool, env.schema, name)) ids.push(e.id);
      const memoryIds: number[] = [];
      for await (const e of memory.read(name, {})) memoryIds.push(e.id);
      expect(ids).toEqual(memoryIds);
      return ids;
    },
    close: () => memory.close(),
  };
}

const bytes = (n: number) => new Uint8Array(n).fill(120);

describe("maxEventSize", () => {
  it("refuses a payload over it with SERVER, in the memory engine's words, and stores one at it", async () => {
    const t = await twin({ maxEventSize: 10 });
    expect(await t.append("a", { payload: bytes(10) })).toEqual({ id: 1 });
    const refused = await t.append("a", { payload: bytes(11) });
    expect(refused).toMatchObject({ code: ErrorCode.Server });
    expect((refused as { message: string }).message).toContain("message size exceeds maximum allowed");
    expect(await t.contents()).toMatchObject({ events: 1, lastId: 1 });
    await t.close();
  });
});

describe("maxEvents", () => {
  it('with discardPolicy "old" removes the oldest events', async () => {
    const t = await twin({ maxEvents: 3 });
    for (let i = 0; i < 5; i++) await t.append(`s${i % 2}`);
    expect(await t.ids()).toEqual([3, 4, 5]);
    expect(await t.contents()).toMatchObject({ events: 3, firstId: 3, lastId: 5, subjects: 2 });
    await t.close();
  });

  it('with discardPolicy "new" refuses the event past it, keeping the first ones', async () => {
    const t = await twin({ maxEvents: 2, discardPolicy: "new" });
    await t.append("a");
    await t.append("b");
    const refused = await t.append("c");
    expect((refused as { message: string }).message).toContain("maximum messages exceeded");
    expect(await t.ids()).toEqual([1, 2]);
    expect(await t.contents()).toMatchObject({ events: 2, firstId: 1, lastId: 2, subjects: 2 });
    await t.close();
  });
});

describe("maxEventsPerSubject", () => {
  it('with discardPolicy "old" keeps the newest of each subject', async () => {
    const t = await twin({ maxEventsPerSubject: 2 });
    for (const s of ["a", "b", "a", "a", "b", "a"]) await t.append(s);
    expect(await t.ids()).toEqual([2, 4, 5, 6]);
    expect((await getEvent(env.pool, env.schema, t.name, { lastOn: `${t.name}.a` })).id).toBe(6);
    expect(await t.contents()).toMatchObject({ events: 4, firstId: 2, lastId: 6, subjects: 2 });
    await t.close();
  });

  it('with discardPolicy "new" an event replacing the oldest of its subject is stored even with the stream at maxEvents', async () => {
    const t = await twin({ maxEventsPerSubject: 1, maxEvents: 2, discardPolicy: "new" });
    await t.append("a");
    await t.append("b");
    expect(await t.append("a")).toEqual({ id: 3 });
    const refused = await t.append("c");
    expect((refused as { message: string }).message).toContain("maximum messages exceeded");
    expect(await t.ids()).toEqual([2, 3]);
    await t.contents();
    await t.close();
  });

  it("with discardNewPerSubject refuses the subject's event past it, and takes other subjects", async () => {
    const t = await twin({ maxEventsPerSubject: 2, discardPolicy: "new", discardNewPerSubject: true });
    await t.append("a");
    await t.append("a");
    const refused = await t.append("a");
    expect(refused).toMatchObject({ code: ErrorCode.Server });
    expect((refused as { message: string }).message).toContain("maximum messages per subject exceeded");
    expect(await t.append("b")).toEqual({ id: 3 });
    expect(await t.ids()).toEqual([1, 2, 3]);
    await t.close();
  });
});

describe("maxBytes", () => {
  it('with discardPolicy "old" removes the oldest until the stream fits, the new event too when it alone is over', async () => {
    const t = await twin({ maxBytes: 100 });
    const name = t.name;
    // Each event: subject (name + ".a") plus 30 payload bytes.
    const size = `${name}.a`.length + 30;
    for (let i = 0; i < 4; i++) await t.append("a", { payload: bytes(30) });
    const kept = Math.floor(100 / size);
    const contents = await t.contents();
    expect(contents).toMatchObject({ events: kept, bytes: kept * size, lastId: 4, firstId: 5 - kept });
    await t.append("a", { payload: bytes(200) });
    expect(await t.contents()).toMatchObject({ events: 0, bytes: 0, firstId: 6, lastId: 5, subjects: 0 });
    expect(await t.ids()).toEqual([]);
    await t.close();
  });

  it('with discardPolicy "new" refuses the event that would take the stream over it', async () => {
    const t = await twin({ maxBytes: 200, discardPolicy: "new" });
    await t.append("a", { payload: bytes(80) });
    const refused = await t.append("a", { payload: bytes(150) });
    expect((refused as { message: string }).message).toContain("maximum bytes exceeded");
    expect(await t.append("a", { payload: bytes(10) })).toEqual({ id: 2 });
    expect(await t.contents()).toMatchObject({ events: 2, firstId: 1, lastId: 2 });
    await t.close();
  });

  it("counts subject, payload, header names and values (the idempotency key's header too) in UTF-16 units, as the memory engine does", async () => {
    const t = await twin({});
    await t.append("a", { payload: bytes(5), headers: [["X-Émoji", "😀 ok"]], idempotencyKey: "k-1" });
    await t.append("b", { payload: bytes(0) });
    const contents = await t.contents();
    const subjects = `${t.name}.a`.length + `${t.name}.b`.length;
    const headers = "X-Émoji".length + "😀 ok".length + "Nats-Msg-Id".length + "k-1".length;
    expect(contents.bytes).toBe(subjects + 5 + headers);
    await t.close();
  });
});

describe("maxAgeMs", () => {
  it("hides expired events from reads and contents at once, and the next append removes them", async () => {
    const t = await twin({ maxAgeMs: 1_000 });
    const name = t.name;
    await t.append("a");
    await t.append("b");
    expect(await t.contents()).toMatchObject({ events: 2, firstId: 1, subjects: 2 });
    await waitFor(
      async () => {
        const c = await streamContents(env.pool, env.schema, name);
        return c.events === 0 ? c : undefined;
      },
      { what: "the events to expire" },
    );
    const gone = await streamContents(env.pool, env.schema, name);
    expect(gone).toMatchObject({ events: 0, bytes: 0, firstId: 3, lastId: 2, subjects: 0 });
    expect(gone.firstTime).toBeUndefined();
    expect(gone.lastTime).toBeUndefined();
    expect((await windshiftError(getEvent(env.pool, env.schema, name, { id: 1 }))).code).toBe(ErrorCode.NotFound);
    const read: number[] = [];
    for await (const e of readEvents(env.pool, env.schema, name)) read.push(e.id);
    expect(read).toEqual([]);
    // Still stored until an append (or purge, deleteEvent, expire()) of the stream removes them.
    const stored = async () =>
      (
        await env.pool.query(
          `SELECT count(*)::int AS n FROM ${quoted(env.schema)}.events e JOIN ${quoted(env.schema)}.streams s ON s.id = e.stream WHERE s.name = $1`,
          [name],
        )
      ).rows[0].n;
    expect(await stored()).toBe(2);
    await t.append("c");
    expect(await stored()).toBe(1);
    expect(await t.contents()).toMatchObject({ events: 1, firstId: 3, lastId: 3, subjects: 1 });
    await t.close();
  });
});

describe("counters", () => {
  it("stay equal to the events stored while 8 writers append to a stream at its limits", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [`${name}.>`], maxEvents: 30, maxEventsPerSubject: 12, maxBytes: 2_000 });
    const pools = Array.from({ length: 8 }, () => env.createPool({ max: 1 }));
    await Promise.all(
      pools.map(async (pool, w) => {
        const appender = createAppender(pool, { schema: env.schema });
        for (let i = 0; i < 20; i++) {
          await appender.append(outgoing(`${name}.w${w % 3}`, { payload: bytes(10 + ((w * i) % 40)) }), APPEND);
        }
      }),
    );
    const s = quoted(env.schema);
    const actual = await env.pool.query(
      `SELECT count(*)::int AS events, coalesce(sum(e.bytes), 0)::int AS bytes, count(DISTINCT e.subject)::int AS subjects,
              min(e.id)::int AS first
         FROM ${s}.events e JOIN ${s}.streams st ON st.id = e.stream WHERE st.name = $1`,
      [name],
    );
    const contents = await streamContents(env.pool, env.schema, name);
    const { first, ...counted } = actual.rows[0];
    expect(contents).toMatchObject({ ...counted, firstId: first, lastId: 160 });
    expect(contents.events).toBeLessThanOrEqual(30);
    expect(contents.bytes).toBeLessThanOrEqual(2_000);
    expect(contents.events).toBeGreaterThan(0);
  });
});

describe("expire()", () => {
  it("removes a stream's expired events without an append", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [`${name}.>`], maxAgeMs: 1_000 });
    const appender = createAppender(env.pool, { schema: env.schema });
    await appender.append(outgoing(`${name}.a`), APPEND);
    await appender.append(outgoing(`${name}.b`), APPEND);
    const s = quoted(env.schema);
    const id = (await env.pool.query(`SELECT id FROM ${s}.streams WHERE name = $1`, [name])).rows[0].id;
    expect((await env.pool.query(`SELECT ${s}.expire($1)::int AS n`, [id])).rows[0].n).toBe(0);
    const removed = await waitFor(
      async () => {
        const n = (await env.pool.query(`SELECT ${s}.expire($1)::int AS n`, [id])).rows[0].n as number;
        return n > 0 ? n : undefined;
      },
      { what: "expire() to remove the events" },
    );
    // Both expire together, or one now and one on a later call.
    const left = (await env.pool.query(`SELECT count(*)::int AS n FROM ${s}.events WHERE stream = $1`, [id])).rows[0]
      .n as number;
    expect(removed + left).toBe(2);
    // Wait on the rows themselves: contents() already leaves an expired but
    // not yet removed event out, so it reads 0 before expire() has run on it.
    await waitFor(
      async () => {
        await env.pool.query(`SELECT ${s}.expire($1)`, [id]);
        const rows = await env.pool.query(`SELECT count(*)::int AS n FROM ${s}.events WHERE stream = $1`, [id]);
        return rows.rows[0].n === 0;
      },
      { what: "expire() to remove the second event" },
    );
    expect((await streamContents(env.pool, env.schema, name)).events).toBe(0);
    const counters = await env.pool.query(`SELECT event_count::int, byte_count::int FROM ${s}.streams WHERE id = $1`, [
      id,
    ]);
    expect(counters.rows[0]).toEqual({ event_count: 0, byte_count: 0 });
  });
});

describe("wake-ups", () => {
  it("notifies channel windshift with '<schema> <stream id>' when an event is stored, not when it is refused", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [`${name}.>`], maxEventSize: 5 });
    const id = (await env.pool.query(`SELECT id FROM ${quoted(env.schema)}.streams WHERE name = $1`, [name])).rows[0]
      .id;
    const listener = new pg.Client({ connectionString: POSTGRES_URL });
    await listener.connect();
    const heard: string[] = [];
    listener.on("notification", (n) => {
      if (n.channel === "windshift") heard.push(n.payload ?? "");
    });
    try {
      await listener.query("LISTEN windshift");
      const appender = createAppender(env.pool, { schema: env.schema });
      await windshiftError(appender.append(outgoing(`${name}.a`, { payload: bytes(6) }), APPEND));
      await appender.append(outgoing(`${name}.a`, { payload: bytes(1) }), APPEND);
      const mine = `${env.schema} ${id}`;
      await waitFor(() => heard.includes(mine), { what: "the notification" });
      expect(heard.filter((p) => p === mine)).toHaveLength(1);
    } finally {
      await listener.end();
    }
  });
});
