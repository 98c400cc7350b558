import { expect, it } from "vitest";
import { type TestEvent, TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, handle, type Middleware } from "../../src/index.js";
import { windshiftError } from "../helpers.js";
import { describeEngines, streamWithWorker, uniqueName } from "./harness.js";
import { expectStats } from "./process-support.js";

describeEngines("idempotent", (env) => {
  it("handles a key once when its event is redelivered after the handler finished", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const once = await env.events.idempotent(uniqueName("done"));
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
    await env.settled(stream, consumer, 1);
    expect(attempts).toEqual([1, 2]);
    expect(handled).toEqual([1]);
    await expectStats(env, processor, { failed: 1, retried: 1, acked: 1 });
  });

  it("handles each key once under concurrency, with a key of your own; events without a key every time", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const once = await env.events.idempotent(uniqueName("done"), {
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
    await env.settled(stream, consumer, texts.length);
    expect([...handled].sort()).toEqual(["", "", "a", "b", "c"]);
    await expectStats(env, processor, { acked: texts.length });

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
    await env.settled(stream, second.name, texts.length);
    expect(again).toEqual(["", ""]);
  });

  it("does not record a key when the handler gave its event back itself", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const once = await env.events.idempotent(uniqueName("done"));
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
    await env.settled(stream, consumer, 1);
    expect(attempts).toEqual([1, 2]);
  });

  it("opens an existing bucket with the keys recorded through it", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const bucket = uniqueName("done");
    const first = await env.events.idempotent(bucket, { ttlMs: 60_000 });
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "x" }, { idempotencyKey: "k" });
    const handled: string[] = [];
    const handler = handle(TestEventSchema, (data, event) => {
      handled.push(`${event.consumer}:${data.text}`);
    });
    {
      await using _ = await env.events.process(stream, consumer, handler, { middleware: [first] });
      await env.settled(stream, consumer, 1);
    }
    // Another client opening the same bucket (without options) sees the key.
    const other = await env.client();
    const reopened = await other.idempotent(bucket);
    const later = await env.events.ensureConsumer(stream, { name: "later", from: { start: true } });
    await using _ = await other.process(stream, later.name, handler, { middleware: [reopened] });
    await env.settled(stream, later.name, 1);
    expect(handled).toEqual([`${consumer}:x`]);
  });

  it("forgets a key after ttlMs: an event with it is handled again", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const once = await env.events.idempotent(uniqueName("done"), { ttlMs: 1_000 });
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "x" }, { idempotencyKey: "k" });
    const handled: string[] = [];
    const handler = handle(TestEventSchema, (_data, event) => {
      handled.push(event.consumer);
    });
    const readAgain = async (name: string): Promise<void> => {
      await env.events.ensureConsumer(stream, { name, from: { start: true } });
      await using _ = await env.events.process(stream, name, handler, { middleware: [once] });
      await env.settled(stream, name, 1);
    };
    const before = env.now();
    await readAgain(consumer);
    await readAgain("soon");
    expect(handled).toEqual([consumer]);
    // Read again, by a fresh consumer each time, until the key is forgotten.
    let reads = 0;
    await env.eventually(
      async () => {
        await readAgain(`later${++reads}`);
        return handled.length > 1;
      },
      { what: "the key forgotten after ttlMs" },
    );
    expect(handled).toEqual([consumer, `later${reads}`]);
    expect(env.now() - before).toBeGreaterThanOrEqual(1_000);
  });

  it("validates its arguments", async () => {
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
