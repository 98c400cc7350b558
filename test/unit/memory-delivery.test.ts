import { describe, expect, it } from "vitest";
import type { ConsumerConfig, Delivery } from "../../src/engines/engine.js";
import { createMemoryEngine } from "../../src/engines/memory/engine.js";
import type { Clock } from "../../src/internal/clock.js";
import { createTestClock } from "../../src/testing/test-clock.js";
import {
  append,
  consumerConfig,
  failure,
  quiet,
  Sink,
  START,
  setup,
  streamConfig,
  subscribe,
  until,
} from "./engine-support.js";

async function fixture(count: number, config: Partial<ConsumerConfig> = {}, limit = 100) {
  const { engine, clock } = setup();
  await engine.ensureStream(streamConfig("s"), undefined);
  for (let i = 0; i < count; i++) await append(engine, "s.x");
  await engine.ensureConsumer("s", consumerConfig(config), undefined);
  const sink = subscribe(engine, "s", "c", limit);
  return { engine, clock, sink };
}

const attempts = (deliveries: readonly Delivery[]) => deliveries.map((d) => [d.id, d.deliveryAttempt]);

describe("memory engine: flow", () => {
  it("never has more than `limit` buffered or on their way, and refills on pull()", async () => {
    const { sink } = await fixture(10, {}, 3);
    await until(() => sink.got.length === 3);
    await quiet();
    expect(sink.got).toHaveLength(3);
    sink.take(2);
    await until(() => sink.got.length === 5);
    await quiet();
    expect(sink.got).toHaveLength(5);
    while (sink.got.length < 10) {
      sink.take(1);
      await quiet();
    }
    expect(sink.ids()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(sink.deepest).toBe(3);
  });

  it("calls no sink method synchronously from consume, pull, append or settlement", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("s"), undefined);
    await engine.ensureConsumer("s", consumerConfig(), undefined);
    const sink = new Sink();
    sink.feed = engine.consume("s", "c", sink, { limit: 10 });
    expect(sink.calls).toBe(0);
    const appended = append(engine, "s.x");
    expect(sink.calls).toBe(0);
    await until(() => sink.got.length === 1);
    const before = sink.calls;
    sink.feed.pull();
    sink.got[0]?.send("nak");
    expect(sink.calls).toBe(before);
    await appended;
    await until(() => sink.got.length === 2);
  });

  it("holds new events back at maxUnsettledEvents until one settles", async () => {
    const { sink } = await fixture(5, { maxUnsettledEvents: 2 });
    await until(() => sink.got.length === 2);
    sink.take();
    await quiet();
    expect(sink.got).toHaveLength(2);
    sink.got[1]?.send("ack");
    await until(() => sink.got.length === 3);
    sink.got[0]?.send("progress"); // not a settlement: still held back
    await quiet();
    expect(sink.ids()).toEqual([1, 2, 3]);
  });

  it("hands each event to exactly one of several competing feeds", async () => {
    const { engine, sink } = await fixture(0);
    await sink.feed?.stop();
    const feeds = [subscribe(engine, "s", "c", 3), subscribe(engine, "s", "c", 3), subscribe(engine, "s", "c", 3)];
    for (let i = 0; i < 30; i++) await append(engine, "s.x");
    const total = () => feeds.reduce((n, f) => n + f.got.length, 0);
    for (let round = 0; round < 30 && total() < 30; round++) {
      for (const feed of feeds) for (const d of feed.take()) d.send("ack");
      await quiet();
    }
    const all = feeds.flatMap((f) => f.ids()).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    for (const feed of feeds) expect(feed.got.length).toBeGreaterThan(0);
    for (const feed of feeds) expect(feed.deepest).toBeLessThanOrEqual(3);
  });

  it("after stop() sends the feed nothing; its deliveries stay pending and time out", async () => {
    const { engine, clock, sink } = await fixture(2, {}, 1);
    await until(() => sink.got.length === 1);
    await sink.feed?.stop();
    sink.take();
    await append(engine, "s.x");
    await quiet();
    expect(sink.ids()).toEqual([1]);
    const other = subscribe(engine, "s", "c", 10);
    await until(() => other.got.length === 2);
    expect(other.ids()).toEqual([2, 3]);
    await clock.advance(30_000);
    await until(() => other.got.length === 5);
    expect(attempts(other.got.slice(2))).toEqual([
      [1, 2],
      [2, 2],
      [3, 2],
    ]);
    await expect(sink.feed?.flush()).resolves.toBeUndefined();
  });
});

describe("memory engine: settlement", () => {
  it("redelivers what is not settled within the processing timeout, in id order, counting attempts", async () => {
    const { clock, sink } = await fixture(3);
    await until(() => sink.got.length === 3);
    sink.got[1]?.send("ack");
    await clock.advance(29_999);
    expect(sink.got).toHaveLength(3);
    await clock.advance(1);
    await until(() => sink.got.length === 5);
    expect(attempts(sink.got.slice(3))).toEqual([
      [1, 2],
      [3, 2],
    ]);
    sink.got[3]?.send("ack");
    await clock.advance(30_000);
    await until(() => sink.got.length === 6);
    expect(attempts(sink.got.slice(5))).toEqual([[3, 3]]);
  });

  it("progress restarts the processing timeout", async () => {
    const { clock, sink } = await fixture(1);
    await until(() => sink.got.length === 1);
    await clock.advance(20_000);
    sink.got[0]?.send("progress");
    await clock.advance(20_000);
    await quiet();
    expect(sink.got).toHaveLength(1);
    await clock.advance(10_000);
    await until(() => sink.got.length === 2);
  });

  it("nak redelivers at once, or after its delay in due order", async () => {
    const { clock, sink } = await fixture(3);
    await until(() => sink.got.length === 3);
    const [d1, d2, d3] = sink.got;
    d3?.send("nak");
    await until(() => sink.got.length === 4);
    expect(attempts(sink.got.slice(3))).toEqual([[3, 2]]);
    d1?.send("nak", 10_000);
    d2?.send("nak", 5_000);
    await clock.advance(4_999);
    expect(sink.got).toHaveLength(4);
    await clock.advance(1);
    await until(() => sink.got.length === 5);
    await clock.advance(5_000);
    await until(() => sink.got.length === 6);
    expect(attempts(sink.got.slice(4))).toEqual([
      [2, 2],
      [1, 2],
    ]);
  });

  it("term settles for good", async () => {
    const { clock, sink } = await fixture(1);
    await until(() => sink.got.length === 1);
    sink.got[0]?.send("term");
    await clock.advance(120_000);
    expect(sink.got).toHaveLength(1);
  });

  it("release redelivers at once, in the order the releases were sent", async () => {
    const { sink } = await fixture(3);
    await until(() => sink.got.length === 3);
    const [d1, d2, d3] = sink.got;
    d3?.send("release");
    d1?.send("release");
    d2?.send("release");
    await until(() => sink.got.length === 6);
    expect(attempts(sink.got.slice(3))).toEqual([
      [3, 2],
      [1, 2],
      [2, 2],
    ]);
  });

  it("stops delivering an event after maxDeliveryAttempts", async () => {
    const { engine, clock, sink } = await fixture(1, { maxDeliveryAttempts: 2 });
    await until(() => sink.got.length === 1);
    await clock.advance(30_000);
    await until(() => sink.got.length === 2);
    await clock.advance(30_000);
    await clock.advance(60_000);
    expect(attempts(sink.got)).toEqual([
      [1, 1],
      [1, 2],
    ]);
    expect((await engine.consumerState("s", "c", undefined)).ackFloor).toBe(1);
  });

  it("settles by event id: an older delivery acks a pending event; settling twice does nothing", async () => {
    const { clock, sink } = await fixture(2);
    await until(() => sink.got.length === 2);
    await clock.advance(30_000);
    await until(() => sink.got.length === 4);
    sink.got[0]?.send("ack"); // the first delivery of event 1, redelivered since
    sink.got[1]?.send("ack");
    sink.got[1]?.send("nak");
    sink.got[3]?.send("release");
    await clock.advance(60_000);
    await quiet();
    expect(sink.got).toHaveLength(4);
  });

  it("confirm settles at once; rejects ABORTED for an aborted signal", async () => {
    const { clock, sink } = await fixture(2);
    await until(() => sink.got.length === 2);
    await expect(sink.got[0]?.confirm("ack", 0, 1_000, undefined)).resolves.toBeUndefined();
    const aborted = await failure(sink.got[1]?.confirm("ack", 0, 1_000, AbortSignal.abort()) ?? Promise.resolve());
    expect(aborted.code).toBe("ABORTED");
    await clock.advance(30_000);
    await until(() => sink.got.length === 3);
    expect(sink.got[2]?.id).toBe(2);
  });

  it("never delivers an expired or deleted event, and forgets pending ones that vanish", async () => {
    const { engine, clock } = setup();
    await engine.ensureStream(streamConfig("s", { maxAgeMs: 60_000 }), undefined);
    for (let i = 0; i < 3; i++) await append(engine, "s.x");
    const config = consumerConfig({ maxUnsettledEvents: 2, processingTimeoutMs: 120_000 });
    await engine.ensureConsumer("s", config, undefined);
    await engine.deleteEvent("s", 2, undefined);
    const sink = subscribe(engine, "s", "c");
    await until(() => sink.got.length === 2);
    expect(sink.ids()).toEqual([1, 3]);
    await clock.advance(60_000); // both expire while pending: they no longer hold the consumer back
    await append(engine, "s.x");
    await until(() => sink.got.length === 3);
    await quiet();
    expect(sink.ids()).toEqual([1, 3, 4]);
    expect((await engine.consumerState("s", "c", undefined)).ackFloor).toBe(3);
  });
});

describe("memory engine: deliveries", () => {
  it("carry the event, lower-case headers (first value) and the raw headers", async () => {
    const { engine, sink } = await fixture(0);
    const headers = [
      ["WS-Data-Type", "shop.v1.Order"],
      ["X-Twice", "1"],
      ["x-twice", "2"],
    ] as const;
    await append(engine, "s.order", { payload: new Uint8Array([1, 2]), headers, idempotencyKey: "k" });
    await until(() => sink.got.length === 1);
    const d = sink.got[0] as Delivery;
    expect([d.id, d.subject, d.stream, d.consumer, d.deliveryAttempt]).toEqual([1, "s.order", "s", "c", 1]);
    expect(d.payload).toEqual(new Uint8Array([1, 2]));
    expect(d.headers.get("ws-data-type")).toBe("shop.v1.Order");
    expect(d.headers.get("x-twice")).toBe("1");
    expect(d.headers.get("nats-msg-id")).toBe("k");
    expect(d.rawHeaders()).toEqual([...headers, ["Nats-Msg-Id", "k"]]);
  });
});

describe("memory engine: close", () => {
  it("clears every timer it set", async () => {
    const clock = createTestClock({ now: START });
    const live = new Set<unknown>();
    const counting: Clock = {
      now: () => clock.now(),
      setTimeout(callback, ms) {
        const handle = clock.setTimeout(() => {
          live.delete(handle);
          callback();
        }, ms);
        live.add(handle);
        return handle;
      },
      clearTimeout(handle) {
        live.delete(handle);
        clock.clearTimeout(handle);
      },
    };
    const engine = createMemoryEngine({ clock: counting });
    await engine.ensureStream(streamConfig("s"), undefined);
    await append(engine, "s.x");
    await append(engine, "s.x");
    await engine.ensureConsumer("s", consumerConfig(), undefined);
    const sink = subscribe(engine, "s", "c");
    await until(() => sink.got.length === 2);
    sink.got[0]?.send("nak", 10_000);
    expect(live.size).toBe(2); // the processing timeout and the nak delay
    await engine.close();
    expect(live.size).toBe(0);
  });

  it("ends feeds, clears timers and refuses settlement and new feeds with CLOSED", async () => {
    const { engine, clock, sink } = await fixture(1);
    await until(() => sink.got.length === 1);
    await engine.close();
    await until(() => sink.hasEnded);
    const d = sink.got[0] as Delivery;
    expect(() => d.send("ack")).toThrow(expect.objectContaining({ code: "CLOSED" }));
    expect((await failure(d.confirm("ack", 0, 1_000, undefined))).code).toBe("CLOSED");
    expect(() => engine.consume("s", "c", new Sink(), { limit: 1 })).toThrow(
      expect.objectContaining({ code: "CLOSED" }),
    );
    expect((await failure(engine.consumerState("s", "c", undefined))).code).toBe("CLOSED");
    expect((await failure(engine.ensureConsumer("s", consumerConfig(), undefined))).code).toBe("CLOSED");
    await clock.advance(60_000);
    expect(sink.got).toHaveLength(1);
  });
});
