import { describe, expect, it } from "vitest";
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

describe("memory engine: consumer start positions and filters", () => {
  it("start delivers from the first event still stored; end only later events", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("s", { maxEvents: 3 }), undefined);
    for (let i = 0; i < 4; i++) await append(engine, "s.x");
    await engine.ensureConsumer("s", consumerConfig({ name: "start" }), undefined);
    await engine.ensureConsumer("s", consumerConfig({ name: "end", from: { kind: "end" } }), undefined);
    const start = subscribe(engine, "s", "start");
    const end = subscribe(engine, "s", "end");
    await until(() => start.got.length === 3);
    expect(start.ids()).toEqual([2, 3, 4]);
    await quiet();
    expect(end.got).toEqual([]);
    await append(engine, "s.x");
    await until(() => end.got.length === 1);
    expect(end.ids()).toEqual([5]);
    expect((await engine.consumerState("s", "end", undefined)).ackFloor).toBe(4);
  });

  it("an id or a time starts at the first event at or after it", async () => {
    const { engine, clock } = setup();
    await engine.ensureStream(streamConfig("s"), undefined);
    await append(engine, "s.x");
    await clock.advance(1_000);
    await append(engine, "s.x");
    await append(engine, "s.x");
    const time = { kind: "time", time: new Date(START + 500) } as const;
    await engine.ensureConsumer("s", consumerConfig({ name: "byTime", from: time }), undefined);
    await engine.ensureConsumer("s", consumerConfig({ name: "byId", from: { kind: "id", id: 3 } }), undefined);
    expect((await engine.consumerState("s", "byId", undefined)).ackFloor).toBe(2);
    const byTime = subscribe(engine, "s", "byTime");
    const byId = subscribe(engine, "s", "byId");
    await until(() => byTime.got.length === 2 && byId.got.length === 1);
    expect(byTime.ids()).toEqual([2, 3]);
    expect(byId.ids()).toEqual([3]);
  });

  it("delivers only events on the filter subjects", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("s"), undefined);
    for (const subject of ["s.a", "s.b.1", "s.c", "s.b.2", "s.a"]) await append(engine, subject);
    await engine.ensureConsumer("s", consumerConfig({ subjects: ["s.a", "s.b.*"] }), undefined);
    const sink = subscribe(engine, "s", "c");
    await until(() => sink.got.length === 4);
    expect(sink.got.map((d) => d.subject)).toEqual(["s.a", "s.b.1", "s.b.2", "s.a"]);
  });

  it("refuses a filter outside the stream's subjects, unless the stream has sources", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("s", { subjects: ["s.*"] }), undefined);
    const err = await failure(engine.ensureConsumer("s", consumerConfig({ subjects: ["s.a", "t.x"] }), undefined));
    expect(err.code).toBe("SERVER");
    expect(err.message).toMatch(/^consumer filter "t\.x" is not within stream "s"'s subjects \("s\.\*"\): /);
    expect(err.details).toEqual({ stream: "s", subject: "t.x", streamSubjects: ["s.*"] });
    // A wider wildcard that still matches the stream's subjects is allowed, as by the server.
    await engine.ensureConsumer("s", consumerConfig({ subjects: ["s.>"] }), undefined);
    const sources = [{ stream: "s", from: { kind: "start" } as const, subjects: [] }];
    await engine.ensureStream(streamConfig("t", { subjects: [], sources }), undefined);
    await engine.ensureConsumer("t", consumerConfig({ subjects: ["anything.*"] }), undefined);
  });
});

describe("memory engine: durable and ephemeral consumers", () => {
  it("answers NOT_FOUND for a missing stream or consumer", async () => {
    const { engine } = setup();
    const noStream = await failure(engine.ensureConsumer("nope", consumerConfig(), undefined));
    expect(noStream.code).toBe("NOT_FOUND");
    expect(noStream.message).toBe('stream "nope" not found: create it with ensureStream("nope", { subjects: [...] })');
    await engine.ensureStream(streamConfig("s"), undefined);
    const noConsumer = await failure(engine.consumerState("s", "nope", undefined));
    expect(noConsumer.code).toBe("NOT_FOUND");
    expect(noConsumer.message).toBe(
      'consumer "nope" of stream "s" not found: create it with ensureConsumer("s", { name: "nope" })',
    );
    expect(noConsumer.details).toEqual({ stream: "s", consumer: "nope" });
    const sink = subscribe(engine, "s", "nope");
    await until(() => sink.failure !== undefined);
    expect(sink.failure?.code).toBe("NOT_FOUND");
  });

  it("updates a durable to the new config, keeping its position, start and pending events", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("s"), undefined);
    for (const subject of ["s.a", "s.b", "s.a"]) await append(engine, subject);
    const created = await engine.ensureConsumer("s", consumerConfig({ name: "d" }), undefined);
    expect(created).toEqual({ config: consumerConfig({ name: "d" }), created: true, name: "d" });
    const first = subscribe(engine, "s", "d", 1);
    await until(() => first.got.length === 1);
    await first.feed?.stop();

    const changed = consumerConfig({ name: "d", subjects: ["s.a"], from: { kind: "end" }, processingTimeoutMs: 5_000 });
    const updated = await engine.ensureConsumer("s", changed, undefined);
    expect(updated).toEqual({
      config: { ...changed, from: { kind: "start" } },
      created: false,
      name: "d",
    });
    expect((await engine.consumerState("s", "d", undefined)).config.processingTimeoutMs).toBe(5_000);
    const second = subscribe(engine, "s", "d");
    await until(() => second.got.length === 1);
    await quiet();
    expect(second.ids()).toEqual([3]); // event 2 is filtered out now; 1 stays pending
    expect((await engine.consumerState("s", "d", undefined)).ackFloor).toBe(0);
    first.got[0]?.send("ack");
    expect((await engine.consumerState("s", "d", undefined)).ackFloor).toBe(2);
  });

  it("names an ephemeral consumer with 8 random characters", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("s"), undefined);
    const a = await engine.ensureConsumer("s", consumerConfig({ name: undefined }), undefined);
    const b = await engine.ensureConsumer("s", consumerConfig({ name: undefined }), undefined);
    expect(a.name).toMatch(/^[A-Za-z0-9]{8}$/);
    expect(b.name).not.toBe(a.name);
    expect(a.created).toBe(true);
    expect(a.config.name).toBeUndefined();
    expect((await engine.consumerState("s", a.name, undefined)).name).toBe(a.name);
  });

  it("removes a consumer left without a feed for inactiveThresholdMs", async () => {
    const { engine, clock } = setup();
    await engine.ensureStream(streamConfig("s"), undefined);
    const { name } = await engine.ensureConsumer(
      "s",
      consumerConfig({ name: undefined, inactiveThresholdMs: 60_000 }),
      undefined,
    );
    await engine.ensureConsumer("s", consumerConfig({ name: "kept" }), undefined);
    const sink = subscribe(engine, "s", name);
    await clock.advance(120_000);
    expect((await engine.consumerState("s", name, undefined)).name).toBe(name); // a feed is attached
    await sink.feed?.stop();
    await clock.advance(59_999);
    await engine.consumerState("s", name, undefined);
    await clock.advance(1);
    expect((await failure(engine.consumerState("s", name, undefined))).code).toBe("NOT_FOUND");
    expect((await engine.consumerState("s", "kept", undefined)).name).toBe("kept");
  });
});

describe("memory engine: ack floor", () => {
  it("is the highest id up to which every event is settled", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("s"), undefined);
    for (let i = 0; i < 4; i++) await append(engine, "s.x");
    await engine.ensureConsumer("s", consumerConfig({ maxDeliveryAttempts: 1 }), undefined);
    const state = async () => (await engine.consumerState("s", "c", undefined)).ackFloor;
    expect(await state()).toBe(0);
    const sink = subscribe(engine, "s", "c");
    await until(() => sink.got.length === 4);
    const [d1, d2, d3] = sink.got;
    d2?.send("ack");
    expect(await state()).toBe(0);
    d1?.send("term");
    expect(await state()).toBe(2);
    d3?.send("nak"); // the last attempt: settled for good
    expect(await state()).toBe(3);
  });
});
