import { jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { type TestEvent, TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, handle, type Middleware } from "../src/index.js";
import { expectStats, streamWithWorker, uniqueName, useServer, waitForSettled, windshiftError } from "./helpers.js";

const env = useServer();

async function setup(): Promise<{ stream: string; consumer: string; bucket: string }> {
  return { ...(await streamWithWorker(env.events)), bucket: uniqueName("done") };
}

function settled(stream: string, consumer: string, count: number): Promise<void> {
  return waitForSettled(env.nc, stream, consumer, count);
}

describe("idempotent", () => {
  it("handles a key once when its event is redelivered after the handler finished", async () => {
    const { stream, consumer, bucket } = await setup();
    const once = await env.events.idempotent(bucket);
    // Stands in for a crash or a lost ack after the work was done: the first
    // attempt fails after the handler, so the event comes back.
    const lostAck: Middleware = async (event, next) => {
      await next();
      if (event.deliveryAttempt === 1) throw new Error("ack lost");
    };
    const handled: number[] = [];
    const attempts: number[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        handled.push(event.id);
      }),
      {
        middleware: [
          async (event, next) => {
            attempts.push(event.deliveryAttempt);
            await next();
          },
          lostAck,
          once,
        ],
        backoff: { initialDelayMs: 10 },
      },
    );
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "x" }, { idempotencyKey: "order-1/created" });
    await settled(stream, consumer, 1);
    expect(attempts).toEqual([1, 2]);
    expect(handled).toEqual([1]);
    await expectStats(processor, { failed: 1, retried: 1, acked: 1 });

    // The bucket is a standard KV bucket holding the key, base64url-encoded.
    const jsm = await jetstreamManager(env.nc);
    const info = await jsm.streams.info(`KV_${bucket}`);
    expect(info.config).toMatchObject({ subjects: [`$KV.${bucket}.>`], max_msgs_per_subject: 1 });
    const key = Buffer.from("order-1/created").toString("base64url");
    const record = await jsm.streams.getMessage(`KV_${bucket}`, { last_by_subj: `$KV.${bucket}.${key}` });
    expect(record?.string()).toBe(`${stream}:1`);
  });

  it("handles each key once under concurrency, with a key of your own; events without a key every time", async () => {
    const { stream, consumer, bucket } = await setup();
    const once = await env.events.idempotent(bucket, {
      key: (event) => {
        const text = (event.data as TestEvent).text;
        return text === "" ? undefined : text;
      },
    });
    const texts = ["a", "b", "a", "c", "b", "a", "", "", "c", "a", "b", "c"];
    for (const text of texts) await env.events.publish(`${stream}.x`, TestEventSchema, { text });
    const handled: string[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, async (data) => {
        await new Promise((r) => setImmediate(r));
        handled.push(data.text);
      }),
      { concurrency: 4, middleware: [once] },
    );
    await settled(stream, consumer, texts.length);
    expect([...handled].sort()).toEqual(["", "", "a", "b", "c"]);
    await expectStats(processor, { acked: texts.length });

    // A second processor (a new consumer over the same events) skips the keys too.
    const second = await env.events.ensureConsumer(stream, { name: "replayer", from: { start: true } });
    const again: string[] = [];
    await using _ = await env.events.process(
      stream,
      second.name,
      handle(TestEventSchema, (data) => {
        again.push(data.text);
      }),
      { middleware: [once] },
    );
    await settled(stream, second.name, texts.length);
    expect(again).toEqual(["", ""]);
  });

  it("does not record a key when the handler gave its event back itself", async () => {
    const { stream, consumer, bucket } = await setup();
    const once = await env.events.idempotent(bucket);
    const attempts: number[] = [];
    await using _ = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, async (_data, event) => {
        attempts.push(event.deliveryAttempt);
        if (event.deliveryAttempt === 1) await event.reject({ delayMs: 10 });
      }),
      { middleware: [once] },
    );
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "x" }, { idempotencyKey: "k" });
    await settled(stream, consumer, 1);
    expect(attempts).toEqual([1, 2]);
  });

  it("opens an existing bucket, and validates its arguments", async () => {
    const bucket = uniqueName("done");
    await env.events.idempotent(bucket, { ttlMs: 60_000 });
    await env.events.idempotent(bucket);
    const jsm = await jetstreamManager(env.nc);
    expect((await jsm.streams.info(`KV_${bucket}`)).config.max_age).toBe(60_000 * 1_000_000);
    for (const [name, options] of [
      ["bad.bucket", undefined],
      ["ok", { ttlMs: 0 }],
      ["ok", { key: "text" }],
      ["ok", { replicas: 9 }],
      ["ok", { unknown: true }],
    ] as const) {
      expect((await windshiftError(() => env.events.idempotent(name, options as never))).code).toBe(
        ErrorCode.Validation,
      );
    }
  });
});
