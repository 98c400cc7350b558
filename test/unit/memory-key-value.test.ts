import { describe, expect, it } from "vitest";
import type { Engine, KeyValue } from "../../src/engines/engine.js";
import { createMemoryEngine } from "../../src/engines/memory/engine.js";
import { createTestClock, type TestClock } from "../../src/testing/test-clock.js";
import { failure, START } from "./engine-support.js";

const bytes = (text: string) => new TextEncoder().encode(text);

async function setup(ttlMs = 0): Promise<{ clock: TestClock; engine: Engine; kv: KeyValue }> {
  const clock = createTestClock({ now: START });
  const engine = createMemoryEngine({ clock });
  return {
    clock,
    engine,
    kv: await engine.keyValue("bucket", { mode: "create", options: { ttlMs, replicas: 1 } }, undefined),
  };
}

describe("memory engine: key-value", () => {
  it("puts and gets with one increasing revision per bucket", async () => {
    const { kv } = await setup();
    expect(await kv.get("a")).toBeUndefined();
    expect(await kv.put("a", bytes("1"))).toBe(1);
    expect(await kv.put("b", bytes("2"))).toBe(2);
    expect(await kv.put("a", bytes("3"))).toBe(3);
    expect(await kv.get("a")).toEqual({ value: bytes("3"), revision: 3 });
    expect(await kv.get("b")).toEqual({ value: bytes("2"), revision: 2 });
  });

  it("compares and sets: expectedRevision must be the key's revision, 0 when absent or deleted", async () => {
    const { kv } = await setup();
    expect(await kv.put("a", bytes("1"), { expectedRevision: 0 })).toBe(1);
    const create = await failure(kv.put("a", bytes("x"), { expectedRevision: 0 }));
    expect(create.code).toBe("WRONG_SEQUENCE");
    expect(create.message).toBe(
      'key "a" of bucket "bucket": expectedRevision 0, but its revision is 1: it was written since; read it again, then write with its revision',
    );
    expect(create.details).toEqual({ bucket: "bucket", key: "a", expected: 0, actual: 1 });
    expect((await failure(kv.put("a", bytes("x"), { expectedRevision: 7 }))).code).toBe("WRONG_SEQUENCE");
    expect(await kv.put("a", bytes("2"), { expectedRevision: 1 })).toBe(2);
    expect((await kv.get("a"))?.value).toEqual(bytes("2"));
  });

  it("deletes, with an optional expected revision; a delete takes a revision", async () => {
    const { kv } = await setup();
    await kv.put("a", bytes("1"));
    expect((await failure(kv.delete("a", { expectedRevision: 5 }))).code).toBe("WRONG_SEQUENCE");
    await kv.delete("a", { expectedRevision: 1 });
    expect(await kv.get("a")).toBeUndefined();
    await kv.delete("a"); // absent: a no-op
    expect(await kv.put("a", bytes("again"), { expectedRevision: 0 })).toBe(3);
  });

  it("forgets entries older than the ttl", async () => {
    const { kv, clock } = await setup(60_000);
    await kv.put("a", bytes("1"));
    await clock.advance(30_000);
    await kv.put("b", bytes("2"));
    await clock.advance(30_000);
    expect(await kv.get("a")).toBeUndefined();
    expect((await kv.get("b"))?.revision).toBe(2);
    expect(await kv.put("a", bytes("3"), { expectedRevision: 0 })).toBe(3);
  });

  it("keeps an existing bucket's settings and entries when opened again", async () => {
    const { engine, kv, clock } = await setup(1_000);
    await kv.put("a", bytes("1"));
    const again = await engine.keyValue("bucket", { mode: "create", options: { ttlMs: 0, replicas: 3 } }, undefined);
    expect((await again.get("a"))?.revision).toBe(1);
    await clock.advance(1_000);
    expect(await again.get("a")).toBeUndefined();
    const other = await engine.keyValue("other", { mode: "create", options: { ttlMs: 0, replicas: 1 } }, undefined);
    expect(await other.get("a")).toBeUndefined();
  });

  it("opens only an existing bucket in open mode, and takes new settings in ensure mode", async () => {
    const { engine, kv, clock } = await setup(1_000);
    expect((await failure(engine.keyValue("missing", { mode: "open" }, undefined))).message).toBe(
      'key-value bucket "missing" not found: it is created by what uses it (idempotent(), ensureWorkflow())',
    );
    await kv.put("a", bytes("1"));
    const opened = await engine.keyValue("bucket", { mode: "open" }, undefined);
    expect((await opened.get("a"))?.revision).toBe(1);
    const ensured = await engine.keyValue(
      "bucket",
      { mode: "ensure", options: { ttlMs: 5_000, replicas: 1 } },
      undefined,
    );
    await clock.advance(4_000);
    expect((await ensured.get("a"))?.revision).toBe(1);
    await clock.advance(1_000);
    expect(await ensured.get("a")).toBeUndefined();
  });

  it("keeps its own copy of values", async () => {
    const { kv } = await setup();
    const value = bytes("one");
    await kv.put("a", value);
    value.set(bytes("two"));
    const read = await kv.get("a");
    expect(read?.value).toEqual(bytes("one"));
    read?.value.set(bytes("xyz"));
    expect((await kv.get("a"))?.value).toEqual(bytes("one"));
  });

  it("rejects ABORTED for an aborted signal and CLOSED after close", async () => {
    const { engine, kv } = await setup();
    const signal = AbortSignal.abort();
    expect((await failure(kv.get("a", signal))).code).toBe("ABORTED");
    expect((await failure(kv.put("a", bytes("1"), { signal }))).code).toBe("ABORTED");
    expect((await failure(kv.delete("a", { signal }))).code).toBe("ABORTED");
    expect(
      (await failure(engine.keyValue("b", { mode: "create", options: { ttlMs: 0, replicas: 1 } }, signal))).code,
    ).toBe("ABORTED");
    await engine.close();
    expect((await failure(kv.get("a"))).code).toBe("CLOSED");
    expect((await failure(kv.put("a", bytes("1")))).code).toBe("CLOSED");
    expect((await failure(kv.delete("a"))).code).toBe("CLOSED");
  });
});
