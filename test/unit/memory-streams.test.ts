import { describe, expect, it } from "vitest";
import type { Engine, StoredEvent } from "../../src/engines/engine.js";
import { createMemoryEngine } from "../../src/engines/memory/engine.js";
import { createTestClock } from "../../src/testing/test-clock.js";
import { append, failure, outgoing, START, setup, streamConfig } from "./engine-support.js";

const APPEND = { timeoutMs: 5_000, signal: undefined };

async function readAll(engine: Engine, stream: string, subject?: string): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for await (const event of engine.read(stream, subject === undefined ? {} : { subject })) out.push(event);
  return out;
}

async function ids(engine: Engine, stream: string, subject?: string): Promise<number[]> {
  return (await readAll(engine, stream, subject)).map((e) => e.id);
}

describe("memory engine: streams", () => {
  it("creates a stream, echoes its config, then updates it in place", async () => {
    const { engine } = setup();
    const first = await engine.ensureStream(streamConfig("s", { replicas: 3 }), undefined);
    expect(first).toEqual({ config: streamConfig("s", { replicas: 3 }), created: true });
    const again = await engine.ensureStream(streamConfig("s", { maxEvents: 10 }), undefined);
    expect(again).toEqual({ config: streamConfig("s", { maxEvents: 10 }), created: false });
  });

  it("gives a stream without subjects or sources its own name as subject, as the server does", async () => {
    const { engine } = setup();
    const { config } = await engine.ensureStream(streamConfig("orders", { subjects: [] }), undefined);
    expect(config.subjects).toEqual(["orders"]);
    expect(await engine.streamsCapturing("orders", undefined)).toEqual(["orders"]);
  });

  it("refuses subjects overlapping another stream's, or each other, and a storage change", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("a", { subjects: ["shop.orders.>"] }), undefined);
    const other = await failure(engine.ensureStream(streamConfig("b", { subjects: ["shop.*.created"] }), undefined));
    expect(other.code).toBe("SERVER");
    expect(other.message).toContain('"b"');
    expect(other.message).toContain("overlap");
    const own = await failure(engine.ensureStream(streamConfig("c", { subjects: ["x.*", "x.y"] }), undefined));
    expect(own.code).toBe("SERVER");
    const storage = await failure(
      engine.ensureStream(streamConfig("a", { subjects: ["shop.orders.>"], storage: "memory" }), undefined),
    );
    expect(storage.code).toBe("SERVER");
    expect(storage.message).toContain("storage type");
    // Disjoint subjects are fine, and so is an update keeping a stream's own subjects.
    await engine.ensureStream(streamConfig("b", { subjects: ["shop.payments.>"] }), undefined);
    await engine.ensureStream(streamConfig("a", { subjects: ["shop.orders.>", "shop.refunds"] }), undefined);
  });

  it("stores in the stream capturing the subject, with ids from 1", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("a"), undefined);
    await engine.ensureStream(streamConfig("b"), undefined);
    expect(await engine.append(outgoing("a.x"), APPEND)).toEqual({ id: 1, stream: "a", duplicate: false });
    expect(await engine.append(outgoing("b.x"), APPEND)).toEqual({ id: 1, stream: "b", duplicate: false });
    expect(await append(engine, "a.y")).toBe(2);
    expect(await engine.streamsCapturing("a.z", undefined)).toEqual(["a"]);
    expect(await engine.streamsCapturing("c.z", undefined)).toEqual([]);
    const events = await readAll(engine, "a");
    expect(events.map((e) => [e.id, e.subject, new TextDecoder().decode(e.payload)])).toEqual([
      [1, "a.x", "a.x"],
      [2, "a.y", "a.y"],
    ]);
  });

  it("refuses a subject no stream captures with UNBOUND_SUBJECT", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("a"), undefined);
    const err = await failure(engine.append(outgoing("nowhere.x"), APPEND));
    expect(err.code).toBe("UNBOUND_SUBJECT");
    expect(err.message).toBe(
      'no stream captures subject "nowhere.x": add it (or a wildcard such as "nowhere.>") to a stream\'s subjects with ensureStream',
    );
    expect(err.details).toEqual({ subject: "nowhere.x" });
  });

  it("stores the idempotency key as Nats-Msg-Id after the event's headers", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("a"), undefined);
    await append(engine, "a.x", { headers: [["WS-Data-Type", "t"]], idempotencyKey: "k1" });
    await append(engine, "a.y", { headers: [["WS-Data-Type", "t"]] });
    const [keyed, plain] = await readAll(engine, "a");
    expect(keyed?.headers).toEqual([
      ["WS-Data-Type", "t"],
      ["Nats-Msg-Id", "k1"],
    ]);
    expect(plain?.headers).toEqual([["WS-Data-Type", "t"]]);
  });
});

describe("memory engine: deduplication", () => {
  it("answers a repeated key within the window with the first id, storing nothing", async () => {
    const { engine, clock } = setup();
    await engine.ensureStream(streamConfig("a", { deduplicationWindowMs: 60_000 }), undefined);
    expect(await append(engine, "a.x", { idempotencyKey: "k" })).toBe(1);
    await append(engine, "a.y");
    await clock.advance(59_999);
    const again = await engine.append(outgoing("a.x", { idempotencyKey: "k" }), APPEND);
    expect(again).toEqual({ id: 1, stream: "a", duplicate: true });
    expect(await ids(engine, "a")).toEqual([1, 2]);
  });

  it("stores the key again once the window has passed since the first event", async () => {
    const { engine, clock } = setup();
    await engine.ensureStream(streamConfig("a", { deduplicationWindowMs: 60_000 }), undefined);
    await append(engine, "a.x", { idempotencyKey: "k" });
    await clock.advance(30_000);
    await append(engine, "a.x", { idempotencyKey: "k" }); // a duplicate: does not extend the window
    await clock.advance(30_000);
    const later = await engine.append(outgoing("a.x", { idempotencyKey: "k" }), APPEND);
    expect(later).toEqual({ id: 2, stream: "a", duplicate: false });
  });

  it("dedupes before the expected checks, as the server does", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("a"), undefined);
    await append(engine, "a.x", { idempotencyKey: "k" });
    await append(engine, "a.x");
    const retry = await engine.append(outgoing("a.x", { idempotencyKey: "k", expectedLastId: 0 }), APPEND);
    expect(retry.duplicate).toBe(true);
  });
});

describe("memory engine: expected ids", () => {
  it("checks the subject's last id (0 when none), then the stream's", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("a"), undefined);
    expect(await append(engine, "a.x", { expectedLastSubjectId: 0 })).toBe(1);
    expect(await append(engine, "a.y", { expectedLastSubjectId: 0, expectedLastId: 1 })).toBe(2);
    expect(await append(engine, "a.x", { expectedLastSubjectId: 1 })).toBe(3);

    const subject = await failure(engine.append(outgoing("a.x", { expectedLastSubjectId: 1 }), APPEND));
    expect(subject.code).toBe("WRONG_SEQUENCE");
    expect(subject.message).toBe(
      'publish to "a.x": expectedLastSubjectId 1, but the last id on "a.x" is 3: another event was stored first; read it, then publish with expectedLastSubjectId 3',
    );
    expect(subject.details).toEqual({
      subject: "a.x",
      stream: "a",
      expected: 1,
      actual: 3,
      option: "expectedLastSubjectId",
    });

    const stream = await failure(engine.append(outgoing("a.x", { expectedLastId: 2 }), APPEND));
    expect(stream.code).toBe("WRONG_SEQUENCE");
    expect(stream.message).toBe(
      'publish to "a.x": expectedLastId 2, but the last id in stream "a" is 3: another event was stored first; read it, then publish with expectedLastId 3',
    );
    expect(stream.details).toMatchObject({ expected: 2, actual: 3, option: "expectedLastId" });
    expect(await ids(engine, "a")).toEqual([1, 2, 3]);
  });

  it("compares with the last id still stored on the subject, and the last id ever assigned", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("a"), undefined);
    await append(engine, "a.x");
    await append(engine, "a.x");
    await engine.deleteEvent("a", 2, undefined);
    expect(await append(engine, "a.x", { expectedLastSubjectId: 1, expectedLastId: 2 })).toBe(3);
  });
});

describe("memory engine: limits", () => {
  it("drops the oldest events over maxEvents, maxBytes and maxEventsPerSubject with discard old", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("a", { maxEvents: 3 }), undefined);
    for (let i = 0; i < 5; i++) await append(engine, "a.x");
    expect(await ids(engine, "a")).toEqual([3, 4, 5]);

    // "b.x" + payload "b.x": 6 bytes each.
    await engine.ensureStream(streamConfig("b", { maxBytes: 13 }), undefined);
    for (let i = 0; i < 3; i++) await append(engine, "b.x");
    expect(await ids(engine, "b")).toEqual([2, 3]);

    await engine.ensureStream(streamConfig("c", { maxEventsPerSubject: 2 }), undefined);
    for (const subject of ["c.x", "c.y", "c.x", "c.x", "c.y", "c.y"]) await append(engine, subject);
    expect(await ids(engine, "c")).toEqual([3, 4, 5, 6]);
    expect(await ids(engine, "c", "c.y")).toEqual([5, 6]);
  });

  it("refuses with SERVER when discard new would exceed maxEvents or maxBytes", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("a", { maxEvents: 2, discardPolicy: "new" }), undefined);
    await append(engine, "a.x");
    await append(engine, "a.x");
    const full = await failure(engine.append(outgoing("a.x"), APPEND));
    expect(full.code).toBe("SERVER");
    expect(full.message).toContain("maximum messages exceeded");

    await engine.ensureStream(streamConfig("b", { maxBytes: 12, discardPolicy: "new" }), undefined);
    await append(engine, "b.x");
    await append(engine, "b.x");
    const bytes = await failure(engine.append(outgoing("b.x"), APPEND));
    expect(bytes.message).toContain("maximum bytes exceeded");
    expect(await ids(engine, "a")).toEqual([1, 2]);
    expect(await ids(engine, "b")).toEqual([1, 2]);
  });

  it("per subject, refuses with discardNewPerSubject and drops the subject's oldest without", async () => {
    const { engine } = setup();
    const limits = { maxEventsPerSubject: 1, discardPolicy: "new" } as const;
    await engine.ensureStream(streamConfig("a", { ...limits, discardNewPerSubject: true }), undefined);
    await append(engine, "a.x");
    await append(engine, "a.y");
    const err = await failure(engine.append(outgoing("a.x"), APPEND));
    expect(err.message).toContain("maximum messages per subject exceeded");

    await engine.ensureStream(streamConfig("b", limits), undefined);
    await append(engine, "b.x");
    await append(engine, "b.x");
    expect(await ids(engine, "b")).toEqual([2]);
  });

  it("refuses a payload over maxEventSize or the engine's max payload", async () => {
    const clock = createTestClock({ now: START });
    const engine = createMemoryEngine({ clock, maxPayloadBytes: 8 });
    expect(engine.maxPayload()).toBe(8);
    await engine.ensureStream(streamConfig("a", { maxEventSize: 4 }), undefined);
    await append(engine, "a.x", { payload: new Uint8Array(4) });
    const big = await failure(engine.append(outgoing("a.x", { payload: new Uint8Array(5) }), APPEND));
    expect(big.code).toBe("SERVER");
    expect(big.message).toContain("message size exceeds maximum allowed");
    await engine.ensureStream(streamConfig("b"), undefined);
    const huge = await failure(engine.append(outgoing("b.x", { payload: new Uint8Array(9) }), APPEND));
    expect(huge.code).toBe("SERVER");
    expect(createMemoryEngine({ clock }).maxPayload()).toBe(1_048_576);
  });

  it("expires events older than maxAgeMs without reusing their ids", async () => {
    const { engine, clock } = setup();
    await engine.ensureStream(streamConfig("a", { maxAgeMs: 10_000 }), undefined);
    await append(engine, "a.x");
    await clock.advance(5_000);
    await append(engine, "a.x");
    await clock.advance(5_000);
    expect(await ids(engine, "a")).toEqual([2]);
    await clock.advance(5_000);
    expect(await ids(engine, "a")).toEqual([]);
    expect(await append(engine, "a.x", { expectedLastId: 2, expectedLastSubjectId: 0 })).toBe(3);
  });

  it("applies an update at once and exactly: lowered limits trim, removed limits stop applying", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("a", { maxEvents: 5 }), undefined);
    for (let i = 0; i < 5; i++) await append(engine, i % 2 === 0 ? "a.x" : "a.y");
    // x: 1 3 5, y: 2 4 → at most 4 events drops 1, one per subject keeps 4 and 5.
    await engine.ensureStream(streamConfig("a", { maxEvents: 4 }), undefined);
    expect(await ids(engine, "a")).toEqual([2, 3, 4, 5]);
    await engine.ensureStream(streamConfig("a", { maxEventsPerSubject: 1 }), undefined);
    expect(await ids(engine, "a")).toEqual([4, 5]);
    const { config } = await engine.ensureStream(streamConfig("a"), undefined);
    expect(config.maxEvents).toBeUndefined();
    for (let i = 0; i < 5; i++) await append(engine, "a.x");
    expect(await ids(engine, "a")).toHaveLength(7);
  });
});

describe("memory engine: read and delete", () => {
  it("reads the events present at the call, on a subject or wildcard, skipping ones deleted meanwhile", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("a"), undefined);
    for (const subject of ["a.x.1", "a.y", "a.x.2", "a.y"]) await append(engine, subject);
    expect(await ids(engine, "a", "a.y")).toEqual([2, 4]);
    expect(await ids(engine, "a", "a.x.*")).toEqual([1, 3]);

    const seen: number[] = [];
    for await (const event of engine.read("a", {})) {
      seen.push(event.id);
      if (event.id === 1) {
        await engine.deleteEvent("a", 2, undefined);
        await append(engine, "a.z");
      }
    }
    expect(seen).toEqual([1, 3, 4]);
  });

  it("answers NOT_FOUND for a missing stream or event, and ABORTED for an aborted read", async () => {
    const { engine } = setup();
    expect((await failure(readAll(engine, "missing"))).code).toBe("NOT_FOUND");
    expect((await failure(engine.deleteEvent("missing", 1, undefined))).code).toBe("NOT_FOUND");
    await engine.ensureStream(streamConfig("a"), undefined);
    await append(engine, "a.x");
    expect((await failure(engine.deleteEvent("a", 2, undefined))).code).toBe("NOT_FOUND");
    await engine.deleteEvent("a", 1, undefined);
    expect((await failure(engine.deleteEvent("a", 1, undefined))).code).toBe("NOT_FOUND");
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    const aborted = await failure(engine.read("a", { signal: controller.signal })[Symbol.asyncIterator]().next());
    expect(aborted.code).toBe("ABORTED");
    expect(aborted.cause).toEqual(new Error("stop"));
  });
});

describe("memory engine: sources", () => {
  it("copies existing then new events from each position and filter", async () => {
    const { engine, clock } = setup();
    await engine.ensureStream(streamConfig("src"), undefined);
    await append(engine, "src.a"); // 1, at START
    await clock.advance(1_000);
    await append(engine, "src.b"); // 2
    await append(engine, "src.a"); // 3
    await engine.ensureStream(
      streamConfig("all", { subjects: [], sources: [{ stream: "src", from: { kind: "start" }, subjects: [] }] }),
      undefined,
    );
    await engine.ensureStream(
      streamConfig("fromId", { subjects: [], sources: [{ stream: "src", from: { kind: "id", id: 2 }, subjects: [] }] }),
      undefined,
    );
    const time = { kind: "time", time: new Date(START + 1_000) } as const;
    await engine.ensureStream(
      streamConfig("fromTime", { subjects: [], sources: [{ stream: "src", from: time, subjects: ["src.a"] }] }),
      undefined,
    );
    await append(engine, "src.a", { headers: [["h", "v"]], idempotencyKey: "k" }); // 4
    const subjects = async (name: string) => (await readAll(engine, name)).map((e) => e.subject);
    expect(await subjects("all")).toEqual(["src.a", "src.b", "src.a", "src.a"]);
    expect(await subjects("fromId")).toEqual(["src.b", "src.a", "src.a"]);
    expect(await subjects("fromTime")).toEqual(["src.a", "src.a"]);
    expect((await readAll(engine, "all"))[3]?.headers).toEqual([
      ["h", "v"],
      ["Nats-Msg-Id", "k"],
    ]);
  });

  it("links a source stream created later, and stops copying when the source is removed", async () => {
    const { engine } = setup();
    const sourced = streamConfig("copy", {
      subjects: ["copy.>"],
      sources: [{ stream: "later", from: { kind: "start" }, subjects: [] }],
    });
    await engine.ensureStream(sourced, undefined);
    await engine.ensureStream(streamConfig("later"), undefined);
    await append(engine, "later.x");
    expect(await ids(engine, "copy")).toEqual([1]);
    await engine.ensureStream(streamConfig("copy", { subjects: ["copy.>"] }), undefined);
    await append(engine, "later.x");
    await append(engine, "copy.own");
    expect((await readAll(engine, "copy")).map((e) => e.subject)).toEqual(["later.x", "copy.own"]);
  });

  it("refuses sources that would form a cycle", async () => {
    const { engine } = setup();
    const source = (stream: string) => [{ stream, from: { kind: "start" } as const, subjects: [] }];
    await engine.ensureStream(streamConfig("a", { sources: source("b") }), undefined);
    const err = await failure(engine.ensureStream(streamConfig("b", { sources: source("a") }), undefined));
    expect(err.code).toBe("SERVER");
    expect(err.message).toContain("cycle");
  });
});

describe("memory engine: close", () => {
  it("rejects every later call with CLOSED", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("a"), undefined);
    await engine.close();
    await engine.close();
    const calls: Promise<unknown>[] = [
      engine.append(outgoing("a.x"), APPEND),
      engine.ensureStream(streamConfig("b"), undefined),
      engine.streamsCapturing("a.x", undefined),
      engine.deleteEvent("a", 1, undefined),
      readAll(engine, "a"),
      engine.keyValue("kv", { mode: "create", options: { ttlMs: 0, replicas: 1 } }, undefined),
    ];
    for (const call of calls) expect((await failure(call)).code).toBe("CLOSED");
    expect(engine.connection()).toBe(engine.connection());
    expect(engine.connection()).toEqual({ system: "memory" });
    expect(Object.isFrozen(engine.connection())).toBe(true);
  });

  it("rejects an already aborted call with ABORTED", async () => {
    const { engine } = setup();
    await engine.ensureStream(streamConfig("a"), undefined);
    const signal = AbortSignal.abort();
    expect((await failure(engine.append(outgoing("a.x"), { timeoutMs: 1, signal }))).code).toBe("ABORTED");
    expect((await failure(engine.ensureStream(streamConfig("a"), signal))).code).toBe("ABORTED");
  });
});
