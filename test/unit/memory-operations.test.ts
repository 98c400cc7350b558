import { describe, expect, it } from "vitest";
import type { Engine, PurgeOptions, StoredEvent } from "../../src/engines/engine.js";
import {
  append,
  consumerConfig,
  failure,
  quiet,
  START,
  setup,
  streamConfig,
  subscribe,
  until,
} from "./engine-support.js";

const text = new TextEncoder();

async function readAll(engine: Engine, stream: string, subject?: string): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for await (const event of engine.read(stream, subject === undefined ? {} : { subject })) out.push(event);
  return out;
}

async function ids(engine: Engine, stream: string): Promise<number[]> {
  return (await readAll(engine, stream)).map((e) => e.id);
}

async function contents(engine: Engine, stream: string) {
  return (await engine.streamState(stream, undefined)).contents;
}

function purgeOf(options: Partial<PurgeOptions> = {}): PurgeOptions {
  return { subject: undefined, keepLast: undefined, upToId: undefined, ...options };
}

/** A stream "s" holding one event per subject given, one second apart from START. */
async function streamWith(subjects: string[], overrides = {}) {
  const { engine, clock } = setup();
  await engine.ensureStream(streamConfig("s", overrides), undefined);
  for (const [i, subject] of subjects.entries()) {
    if (i > 0) await clock.advance(1_000);
    await append(engine, subject);
  }
  return { engine, clock };
}

describe("memory engine: stream state", () => {
  it("reports a stream never used as ids 0, no times, nothing held", async () => {
    const { engine } = setup();
    const { config } = await engine.ensureStream(streamConfig("s"), undefined);
    expect(await engine.streamState("s", undefined)).toEqual({
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
  });

  it("counts events, bytes, distinct subjects and consumers, with the first and last times", async () => {
    const { engine } = await streamWith(["s.a", "s.b", "s.a"]);
    await engine.ensureConsumer("s", consumerConfig({ name: "x" }), undefined);
    await engine.ensureConsumer("s", consumerConfig({ name: "y" }), undefined);
    const state = await contents(engine, "s");
    expect(state).toMatchObject({ events: 3, firstId: 1, firstTime: START, lastId: 3, lastTime: START + 2_000 });
    expect(state).toMatchObject({ subjects: 2, consumers: 2 });
    expect(state.bytes).toBeGreaterThan(0);
    await engine.deleteEvent("s", 2, undefined);
    const after = await contents(engine, "s");
    expect(after).toMatchObject({ events: 2, firstId: 1, lastId: 3, subjects: 1 });
    expect(after.bytes).toBeLessThan(state.bytes);
  });

  it("keeps the last stored event's time once that event is gone, as nats-server's last_ts", async () => {
    const { engine } = await streamWith(["s.a", "s.b", "s.c"]);
    await engine.deleteEvent("s", 3, undefined);
    expect(await contents(engine, "s")).toMatchObject({ events: 2, lastId: 3, lastTime: START + 2_000 });
    await engine.deleteEvent("s", 1, undefined);
    expect(await contents(engine, "s")).toMatchObject({ firstId: 2, firstTime: START + 1_000 });
  });

  it("reports an emptied stream's next id as firstId, without times, once max age has passed", async () => {
    const { engine, clock } = await streamWith(["s.a", "s.b"], { maxAgeMs: 10_000 });
    await clock.advance(9_000);
    expect(await contents(engine, "s")).toMatchObject({ events: 1, firstId: 2, firstTime: START + 1_000 });
    await clock.advance(1_000);
    expect(await contents(engine, "s")).toEqual({
      events: 0,
      bytes: 0,
      firstId: 3,
      firstTime: undefined,
      lastId: 2,
      lastTime: undefined,
      subjects: 0,
      consumers: 0,
    });
  });

  it("holds the events copied from a source", async () => {
    const { engine } = await streamWith(["s.a", "s.b"]);
    const sources = [{ stream: "s", from: { kind: "start" } as const, subjects: ["s.b"] }];
    await engine.ensureStream(streamConfig("t", { subjects: [], sources }), undefined);
    await append(engine, "s.b");
    expect(await contents(engine, "t")).toMatchObject({ events: 2, firstId: 1, lastId: 2, subjects: 1 });
  });

  it("lists every stream by name", async () => {
    const { engine } = setup();
    expect(await engine.listStreams(undefined)).toEqual([]);
    for (const name of ["b", "c", "a"]) await engine.ensureStream(streamConfig(name), undefined);
    await append(engine, "c.x");
    const states = await engine.listStreams(undefined);
    expect(states.map((s) => [s.config.name, s.contents.events])).toEqual([
      ["a", 0],
      ["b", 0],
      ["c", 1],
    ]);
  });
});

describe("memory engine: consumers listed and deleted", () => {
  it("lists a stream's consumers by name, without those removed for inactivity", async () => {
    const { engine, clock } = setup();
    await engine.ensureStream(streamConfig("s"), undefined);
    for (const name of ["b", "a"]) await engine.ensureConsumer("s", consumerConfig({ name }), undefined);
    await engine.ensureConsumer("s", consumerConfig({ name: "idle", inactiveThresholdMs: 1_000 }), undefined);
    expect((await engine.listConsumers("s", undefined)).map((c) => c.name)).toEqual(["a", "b", "idle"]);
    await clock.advance(1_000);
    expect((await engine.listConsumers("s", undefined)).map((c) => c.name)).toEqual(["a", "b"]);
    expect((await contents(engine, "s")).consumers).toBe(2);
    const [a] = await engine.listConsumers("s", undefined);
    expect(a).toEqual(await engine.consumerState("s", "a", undefined));
    expect((await failure(engine.listConsumers("nope", undefined))).message).toBe(
      'stream "nope" not found: create it with ensureStream("nope", { subjects: [...] })',
    );
  });

  it("counts unsettled events delivered more than once, and the last id delivered", async () => {
    const { engine } = await streamWith(["s.a", "s.a", "s.a"]);
    await engine.ensureConsumer("s", consumerConfig(), undefined);
    expect(await engine.consumerState("s", "c", undefined)).toMatchObject({ redelivered: 0, lastDeliveredId: 0 });
    const sink = subscribe(engine, "s", "c");
    await until(() => sink.got.length === 3);
    const [d1, d2, d3] = sink.take();
    d1?.send("nak");
    d2?.send("nak");
    await until(() => sink.got.length === 5);
    expect(await engine.consumerState("s", "c", undefined)).toMatchObject({
      unsettled: 3,
      redelivered: 2,
      lastDeliveredId: 3,
    });
    for (const d of [...sink.take(), d3]) d?.send("ack");
    expect(await engine.consumerState("s", "c", undefined)).toMatchObject({ unsettled: 0, redelivered: 0 });
  });

  it("reports the id before its start as last delivered, as nats-server's delivered.stream_seq", async () => {
    const { engine } = await streamWith(["s.a", "s.a", "s.a"]);
    await engine.ensureConsumer("s", consumerConfig({ name: "end", from: { kind: "end" } }), undefined);
    await engine.ensureConsumer("s", consumerConfig({ name: "id", from: { kind: "id", id: 2 } }), undefined);
    expect((await engine.consumerState("s", "end", undefined)).lastDeliveredId).toBe(3);
    expect((await engine.consumerState("s", "id", undefined)).lastDeliveredId).toBe(1);
  });

  it("deletes a consumer: its feeds fail with NOT_FOUND, and a durable can be created again", async () => {
    const { engine } = await streamWith(["s.a", "s.a"]);
    await engine.ensureConsumer("s", consumerConfig(), undefined);
    const sink = subscribe(engine, "s", "c");
    await until(() => sink.got.length === 2);
    await engine.deleteConsumer("s", "c", undefined);
    await until(() => sink.failure !== undefined);
    expect(sink.failure?.code).toBe("NOT_FOUND");
    expect(sink.failure?.message).toBe(
      'consumer "c" of stream "s" no longer exists (deleted, or inactive past its inactiveThresholdMs); no more events come from it (onConsumerDeleted: "recreate" creates it again)',
    );
    expect(sink.failure?.details).toEqual({ stream: "s", consumer: "c" });
    expect((await failure(engine.consumerState("s", "c", undefined))).code).toBe("NOT_FOUND");
    expect((await failure(engine.deleteConsumer("s", "c", undefined))).message).toBe(
      'consumer "c" of stream "s" not found; listConsumers("s") lists those there are',
    );
    expect((await failure(engine.deleteConsumer("nope", "c", undefined))).message).toBe(
      'stream "nope" not found; listStreams() lists those there are',
    );
    // Where a subscription with onConsumerDeleted "recreate" resumes it.
    const again = await engine.ensureConsumer("s", consumerConfig({ from: { kind: "id", id: 2 } }), undefined);
    expect(again.created).toBe(true);
    const resumed = subscribe(engine, "s", "c");
    await until(() => resumed.got.length === 1);
    expect(resumed.ids()).toEqual([2]);
  });
});

describe("memory engine: deleting a stream", () => {
  it("removes its events and consumers; its subjects are unbound; a new one starts at id 1", async () => {
    const { engine } = await streamWith(["s.a", "s.b"]);
    await engine.ensureConsumer("s", consumerConfig(), undefined);
    const sink = subscribe(engine, "s", "c");
    await until(() => sink.got.length === 2);
    await engine.deleteStream("s", undefined);
    await until(() => sink.failure !== undefined);
    expect(sink.failure?.code).toBe("NOT_FOUND");
    expect((await failure(engine.streamState("s", undefined))).message).toBe(
      'stream "s" not found: create it with ensureStream("s", { subjects: [...] })',
    );
    expect((await failure(append(engine, "s.a"))).code).toBe("UNBOUND_SUBJECT");
    expect(await engine.streamsCapturing("s.a", undefined)).toEqual([]);
    expect(await engine.listStreams(undefined)).toEqual([]);
    expect((await failure(engine.deleteStream("s", undefined))).message).toBe(
      'stream "s" not found; listStreams() lists those there are',
    );
    await engine.ensureStream(streamConfig("s"), undefined);
    expect(await append(engine, "s.a")).toBe(1);
    expect((await engine.streamState("s", undefined)).contents).toMatchObject({ events: 1, consumers: 0 });
    expect((await failure(engine.consumerState("s", "c", undefined))).code).toBe("NOT_FOUND");
  });

  it("fails a read going on when the stream is deleted", async () => {
    const { engine } = await streamWith(["s.a", "s.b"]);
    const reading = engine.read("s", {})[Symbol.asyncIterator]();
    expect((await reading.next()).value?.id).toBe(1);
    await engine.deleteStream("s", undefined);
    expect((await failure(reading.next())).code).toBe("NOT_FOUND");
  });

  it("unlinks its sources: streams sourcing it keep their copies, and copy a new one from its start", async () => {
    const { engine } = await streamWith(["s.a"]);
    const from = { kind: "start" } as const;
    await engine.ensureStream(
      streamConfig("t", { subjects: [], sources: [{ stream: "s", from, subjects: [] }] }),
      undefined,
    );
    await engine.ensureStream(
      streamConfig("u", { subjects: [], sources: [{ stream: "t", from, subjects: [] }] }),
      undefined,
    );
    expect((await contents(engine, "u")).events).toBe(1);
    await engine.deleteStream("t", undefined);
    await append(engine, "s.a"); // t no longer copies s
    expect((await contents(engine, "u")).events).toBe(1);
    await engine.deleteStream("s", undefined);
    await engine.ensureStream(streamConfig("t", { subjects: ["t.>"] }), undefined);
    await append(engine, "t.x");
    expect(await ids(engine, "u")).toEqual([1, 2]);
    expect((await readAll(engine, "u")).map((e) => e.subject)).toEqual(["s.a", "t.x"]);
  });
});

describe("memory engine: purging a stream", () => {
  it("removes every event; ids go on from where they were", async () => {
    const { engine } = await streamWith(["s.a", "s.b", "s.c"]);
    expect(await engine.purgeStream("s", purgeOf(), undefined)).toBe(3);
    expect(await contents(engine, "s")).toMatchObject({ events: 0, bytes: 0, firstId: 4, lastId: 3, subjects: 0 });
    expect(await engine.purgeStream("s", purgeOf(), undefined)).toBe(0);
    expect(await append(engine, "s.a")).toBe(4);
    expect((await failure(engine.purgeStream("nope", purgeOf(), undefined))).message).toMatch(
      /^stream "nope" not found: /,
    );
  });

  it("removes only the events on a subject, wildcards allowed", async () => {
    const { engine } = await streamWith(["s.a.1", "s.b", "s.a.2", "s.b", "s.c"]);
    expect(await engine.purgeStream("s", purgeOf({ subject: "s.b" }), undefined)).toBe(2);
    expect(await ids(engine, "s")).toEqual([1, 3, 5]);
    expect(await engine.purgeStream("s", purgeOf({ subject: "s.a.*" }), undefined)).toBe(2);
    expect(await ids(engine, "s")).toEqual([5]);
    expect(await engine.purgeStream("s", purgeOf({ subject: "s.none" }), undefined)).toBe(0);
    expect(await engine.purgeStream("s", purgeOf({ subject: ">" }), undefined)).toBe(1);
  });

  it("keeps the newest events, of a subject when given", async () => {
    const { engine } = await streamWith(["s.a", "s.b", "s.a", "s.b", "s.a"]);
    expect(await engine.purgeStream("s", purgeOf({ subject: "s.a", keepLast: 1 }), undefined)).toBe(2);
    expect(await ids(engine, "s")).toEqual([2, 4, 5]);
    expect(await engine.purgeStream("s", purgeOf({ keepLast: 3 }), undefined)).toBe(0);
    expect(await engine.purgeStream("s", purgeOf({ keepLast: 2 }), undefined)).toBe(1);
    expect(await ids(engine, "s")).toEqual([4, 5]);
    expect(await engine.purgeStream("s", purgeOf({ subject: "s.b", keepLast: 0 }), undefined)).toBe(1);
    expect(await engine.purgeStream("s", purgeOf({ keepLast: 0 }), undefined)).toBe(1);
    expect(await contents(engine, "s")).toMatchObject({ events: 0, firstId: 6 });
  });

  it("keeps the newest ids without a subject, as nats-server: a gap among them keeps fewer events", async () => {
    const { engine } = await streamWith(["s.a", "s.a", "s.a", "s.a", "s.a"]);
    await engine.deleteEvent("s", 4, undefined);
    expect(await engine.purgeStream("s", purgeOf({ keepLast: 2 }), undefined)).toBe(3);
    expect(await ids(engine, "s")).toEqual([5]);
  });

  it("removes the ids below upToId, of a subject when given; past the end, the next id is upToId", async () => {
    const { engine } = await streamWith(["s.a", "s.b", "s.a", "s.b", "s.a"]);
    expect(await engine.purgeStream("s", purgeOf({ upToId: 1 }), undefined)).toBe(0);
    expect(await engine.purgeStream("s", purgeOf({ subject: "s.a", upToId: 4 }), undefined)).toBe(2);
    expect(await ids(engine, "s")).toEqual([2, 4, 5]);
    expect(await engine.purgeStream("s", purgeOf({ upToId: 5 }), undefined)).toBe(2);
    expect(await ids(engine, "s")).toEqual([5]);
    expect(await engine.purgeStream("s", purgeOf({ upToId: 10 }), undefined)).toBe(1);
    expect(await contents(engine, "s")).toMatchObject({ events: 0, firstId: 10, lastId: 9 });
    expect(await append(engine, "s.a")).toBe(10);
  });

  it("stops redelivering purged events; a purge below an id moves a consumer behind past them", async () => {
    const { engine } = await streamWith(["s.a", "s.b", "s.a", "s.b"]);
    await engine.ensureConsumer("s", consumerConfig({ maxUnsettledEvents: 2 }), undefined);
    await engine.ensureConsumer("s", consumerConfig({ name: "behind" }), undefined);
    const sink = subscribe(engine, "s", "c");
    await until(() => sink.got.length === 2);
    await engine.purgeStream("s", purgeOf({ subject: "s.a" }), undefined);
    // Event 1 is gone, so it no longer counts against maxUnsettledEvents: event 2 was delivered already, 4 comes.
    await until(() => sink.got.length === 3);
    expect(sink.ids()).toEqual([1, 2, 4]);
    expect(await engine.consumerState("s", "c", undefined)).toMatchObject({ unsettled: 2, ackFloor: 1 });
    expect(await engine.consumerState("s", "behind", undefined)).toMatchObject({ ackFloor: 0, pending: 2 });
    await engine.purgeStream("s", purgeOf({ upToId: 4 }), undefined);
    sink.got[0]?.send("nak");
    await quiet();
    expect(sink.ids()).toEqual([1, 2, 4]);
    expect(await engine.consumerState("s", "c", undefined)).toMatchObject({ unsettled: 1, ackFloor: 3 });
    expect(await engine.consumerState("s", "behind", undefined)).toMatchObject({
      ackFloor: 3,
      lastDeliveredId: 3,
      pending: 1,
    });
  });
});

describe("memory engine: consumers' positions after a purge, as on nats-server 2.9.10", () => {
  async function behind(purge: Partial<PurgeOptions>, filters: Record<string, string[]>) {
    const { engine } = await streamWith(["s.a", "s.b", "s.a", "s.b", "s.a"]);
    for (const [name, subjects] of Object.entries(filters)) {
      await engine.ensureConsumer("s", consumerConfig({ name, subjects }), undefined);
    }
    await engine.purgeStream("s", purgeOf(purge), undefined);
    const floors: Record<string, number> = {};
    for (const state of await engine.listConsumers("s", undefined)) floors[state.name] = state.lastDeliveredId;
    return floors;
  }

  it("a plain purge moves every consumer past the removed ids", async () => {
    expect(await behind({}, { all: [], a: ["s.a"] })).toEqual({ all: 5, a: 5 });
  });

  it("a purge with keepLast, upToId or > moves the unfiltered consumers only", async () => {
    expect(await behind({ upToId: 3 }, { all: [], a: ["s.a"] })).toEqual({ all: 2, a: 0 });
    expect(await behind({ keepLast: 1 }, { all: [], a: ["s.a"] })).toEqual({ all: 4, a: 0 });
    expect(await behind({ subject: ">" }, { all: [], a: ["s.a"] })).toEqual({ all: 5, a: 0 });
  });

  it("a subject purge moves the consumers filtered on that subject to the first event left on it", async () => {
    const filters = { all: [], a: ["s.a"], b: ["s.b"], any: ["s.*"] };
    expect(await behind({ subject: "s.a", keepLast: 1 }, filters)).toEqual({ all: 0, a: 4, b: 0, any: 0 });
    expect(await behind({ subject: "s.a" }, filters)).toEqual({ all: 0, a: 5, b: 0, any: 0 });
  });

  it("a purge of a stream never used makes its first id 1, as the server's does", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("s"), undefined);
    await engine.purgeStream("s", purgeOf({ subject: "s.a" }), undefined);
    expect(await contents(engine, "s")).toMatchObject({ firstId: 0, lastId: 0 });
    expect(await engine.purgeStream("s", purgeOf(), undefined)).toBe(0);
    expect(await contents(engine, "s")).toMatchObject({ firstId: 1, lastId: 0 });
  });
});

describe("memory engine: single events", () => {
  it("reads one event by id, with its headers and the time it was stored", async () => {
    const { engine, clock } = await streamWith(["s.a"]);
    await clock.advance(1_000);
    await append(engine, "s.b", { headers: [["h", "1"]], idempotencyKey: "k" });
    const event = await engine.getEvent("s", { id: 2 }, undefined);
    expect(event).toEqual({
      id: 2,
      subject: "s.b",
      payload: text.encode("s.b"),
      headers: [
        ["h", "1"],
        ["Nats-Msg-Id", "k"],
      ],
      time: START + 1_000,
    });
    expect((await readAll(engine, "s")).map((e) => e.time)).toEqual([START, START + 1_000]);
    await engine.deleteEvent("s", 1, undefined);
    const gone = await failure(engine.getEvent("s", { id: 1 }, undefined));
    expect([gone.code, gone.message, gone.details]).toEqual([
      "NOT_FOUND",
      'stream "s" has no event 1 (never stored, deleted, or removed by a limit)',
      { stream: "s", id: 1 },
    ]);
    expect((await failure(engine.getEvent("s", { id: 3 }, undefined))).code).toBe("NOT_FOUND");
    expect((await failure(engine.getEvent("nope", { id: 1 }, undefined))).message).toMatch(
      /^stream "nope" not found: /,
    );
  });

  it("reads the last event on a subject", async () => {
    const { engine } = await streamWith(["s.a", "s.b", "s.a", "s.a"]);
    expect((await engine.getEvent("s", { lastOn: "s.a" }, undefined)).id).toBe(4);
    await engine.deleteEvent("s", 4, undefined);
    expect((await engine.getEvent("s", { lastOn: "s.a" }, undefined)).id).toBe(3);
    const none = await failure(engine.getEvent("s", { lastOn: "s.c" }, undefined));
    expect([none.code, none.details]).toEqual(["NOT_FOUND", { stream: "s", subject: "s.c" }]);
  });
});

describe("memory engine: operations after close or abort", () => {
  const calls: [string, (engine: Engine, signal?: AbortSignal) => Promise<unknown>][] = [
    ["streamState", (e, signal) => e.streamState("s", signal)],
    ["listStreams", (e, signal) => e.listStreams(signal)],
    ["listConsumers", (e, signal) => e.listConsumers("s", signal)],
    ["deleteConsumer", (e, signal) => e.deleteConsumer("s", "c", signal)],
    ["deleteStream", (e, signal) => e.deleteStream("s", signal)],
    ["purgeStream", (e, signal) => e.purgeStream("s", purgeOf(), signal)],
    ["getEvent", (e, signal) => e.getEvent("s", { id: 1 }, signal)],
  ];

  it.each(calls)("%s fails with ABORTED for an aborted signal and CLOSED once closed", async (_, call) => {
    const { engine } = await streamWith(["s.a"]);
    await engine.ensureConsumer("s", consumerConfig(), undefined);
    expect((await failure(call(engine, AbortSignal.abort()))).code).toBe("ABORTED");
    await call(engine); // the abort changed nothing
    await engine.close();
    expect((await failure(call(engine))).code).toBe("CLOSED");
  });
});
