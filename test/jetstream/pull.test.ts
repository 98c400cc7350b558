// How a subscription pulls from the NATS server: the pull requests on the
// wire, a server restart, a consumer deleted and recreated. Prefetch bounds
// and settlement are in test/conformance/settle.test.ts.
import { jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import type { SubscriptionStatus } from "../../src/index.js";
import { consumerState, nextEvent, uniqueName, useServer, waitFor } from "../helpers.js";

const env = useServer();

describe("pulling from JetStream", () => {
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
      await consumerState(env.nc, stream, "w");
      await ev.ack();
    }
    watch.unsubscribe();
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.length).toBeLessThanOrEqual(30);
    expect(Math.min(...requests)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...requests)).toBeLessThanOrEqual(20);
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
    // A publish that times out may still have been stored: the key makes its retries that one event.
    const published = await waitFor(
      () =>
        env.events
          .publish(`${stream}.a`, TestEventSchema, { text: "after" }, { timeoutMs: 500, idempotencyKey: "after" })
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
    const statuses: SubscriptionStatus[] = [];
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
    const info = await jsm.consumers.info(stream, "w");
    expect(info.config.durable_name).toBe("w");
    expect(info.config.ack_wait).toBe(10_000 * 1_000_000);
  }, 60_000);
});
