import { jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import { holdFor, nextEvent, uniqueName, useServer, waitFor } from "./helpers.js";

const env = useServer();

async function consumerInfo(stream: string, consumer: string) {
  const jsm = await jetstreamManager(env.nc);
  return jsm.consumers.info(stream, consumer);
}

describe("pulling", () => {
  it("fetches at most maxPendingEvents ahead of the loop", async () => {
    const stream = uniqueName();
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await env.events.ensureConsumer(stream, { name: "w", from: { start: true } });
    for (let i = 0; i < 20; i++) await env.events.publish(`${stream}.a`, TestEventSchema, {});
    await using sub = await env.events.subscribe(stream, "w", { schema: TestEventSchema, maxPendingEvents: 5 });
    await waitFor(async () => (await consumerInfo(stream, "w")).num_ack_pending === 5, { what: "5 delivered" });
    const it = sub[Symbol.asyncIterator]();
    // Nothing more is delivered while the loop takes nothing (the wait is the condition).
    await holdFor(300);
    expect((await consumerInfo(stream, "w")).num_ack_pending).toBe(5);
    expect((await consumerInfo(stream, "w")).num_pending).toBe(15);
    // Taking and acking events makes room for more, never more than 5 ahead.
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) {
      const ev = await nextEvent(it);
      ids.push(ev.id);
      await ev.ack();
      expect((await consumerInfo(stream, "w")).num_ack_pending).toBeLessThanOrEqual(5);
    }
    expect(ids).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it("resumes by itself after the server restarts", async () => {
    const stream = uniqueName();
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await env.events.ensureConsumer(stream, { name: "w", from: { start: true } });
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "before" });
    await using sub = await env.events.subscribe(stream, "w", { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    const before = await nextEvent(it);
    await before.ack();
    await env.server.restart();
    const published = await waitFor(
      () =>
        env.events
          .publish(`${stream}.a`, TestEventSchema, { text: "after" }, { timeoutMs: 500 })
          .catch(() => undefined),
      { timeoutMs: 20_000, intervalMs: 200, what: "publishing after the restart" },
    );
    const after = await nextEvent(it, 20_000);
    expect([after.id, after.data.text]).toEqual([published.id, "after"]);
    await after.ack();
  }, 60_000);
});
