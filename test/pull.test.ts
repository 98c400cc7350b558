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
  it("fetches at most prefetch ahead of the loop", async () => {
    const stream = uniqueName();
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await env.events.ensureConsumer(stream, { name: "w", from: { start: true } });
    for (let i = 0; i < 20; i++) await env.events.publish(`${stream}.a`, TestEventSchema, {});
    await using sub = await env.events.subscribe(stream, "w", { schema: TestEventSchema, prefetch: 5 });
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

  it("asks for half a batch or more at a time, not one event per pull, to a loop slower than delivery", async () => {
    const stream = uniqueName();
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await env.events.ensureConsumer(stream, { name: "w", from: { start: true } });
    for (let i = 0; i < 200; i++) await env.events.publish(`${stream}.a`, TestEventSchema, {});
    // Watch the pull requests on the wire from a second connection.
    const watcher = await env.connect();
    const requests: number[] = [];
    const watch = watcher.subscribe(`$JS.API.CONSUMER.MSG.NEXT.${stream}.w`, {
      callback: (_err, msg) => {
        requests.push((msg.json() as { batch: number }).batch);
      },
    });
    await watcher.flush();
    await using sub = await env.events.subscribe(stream, "w", { schema: TestEventSchema, prefetch: 20 });
    const it = sub[Symbol.asyncIterator]();
    for (let i = 0; i < 200; i++) {
      const ev = await nextEvent(it);
      // A round trip per event: slower than delivery, so the buffer is full whenever the loop comes back.
      await consumerInfo(stream, "w");
      await ev.ack();
    }
    watch.unsubscribe();
    expect(requests.length).toBeLessThanOrEqual(30);
    expect(Math.min(...requests)).toBeGreaterThanOrEqual(10);
  });

  it("resumes by itself after the server restarts", async () => {
    const stream = uniqueName();
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await env.events.ensureConsumer(stream, { name: "w", from: { start: true } });
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "before" });
    await using sub = await env.events.subscribe(stream, "w", { schema: TestEventSchema });
    const statuses: string[] = [];
    void (async () => {
      for await (const s of sub.status()) statuses.push(s.type);
    })();
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
    expect(statuses).toContain("reconnected");
  }, 60_000);

  it('onConsumerDeleted: "recreate" recreates the durable and carries on', async () => {
    const stream = uniqueName();
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await env.events.ensureConsumer(stream, { name: "w", from: { start: true }, processingTimeoutMs: 10_000 });
    for (let i = 0; i < 3; i++) await env.events.publish(`${stream}.a`, TestEventSchema, {});
    await using sub = await env.events.subscribe(stream, "w", {
      schema: TestEventSchema,
      onConsumerDeleted: "recreate",
    });
    const statuses: unknown[] = [];
    void (async () => {
      for await (const s of sub.status()) statuses.push(s);
    })();
    const it = sub[Symbol.asyncIterator]();
    for (let i = 1; i <= 2; i++) await (await nextEvent(it)).ack();
    const jsm = await jetstreamManager(env.nc);
    await jsm.consumers.delete(stream, "w");
    await env.events.publish(`${stream}.a`, TestEventSchema, {});
    const seen: number[] = [];
    while (!seen.includes(4)) {
      const ev = await nextEvent(it, 20_000);
      seen.push(ev.id);
      await ev.ack();
    }
    // Nothing unacked is skipped; events may come again after a recreation.
    expect(seen).toContain(3);
    expect(statuses).toEqual(
      expect.arrayContaining([{ type: "consumer-deleted" }, { type: "consumer-recreated", fromId: 3 }]),
    );
    expect((await jsm.consumers.info(stream, "w")).config.durable_name).toBe("w");
  }, 60_000);

  it("a status iterator ends with the subscription", async () => {
    const stream = uniqueName();
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await env.events.ensureConsumer(stream, { name: "w" });
    const sub = await env.events.subscribe(stream, "w");
    const statuses: unknown[] = [];
    const done = (async () => {
      for await (const s of sub.status()) statuses.push(s);
    })();
    await sub.close();
    await done;
    expect(statuses).toEqual([{ type: "closed" }]);
  });
});
