import { jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { describe, expect, expectTypeOf, it } from "vitest";
import {
  type OtherEvent,
  OtherEventSchema,
  type TestEvent,
  TestEventSchema,
} from "../gen/windshift/test/v1/events_pb.js";
import {
  ErrorCode,
  type Event,
  handle,
  type Middleware,
  PermanentError,
  type Processor,
  router,
  WindshiftError,
} from "../src/index.js";
import {
  consumerState,
  expectStats,
  streamWithWorker,
  useServer,
  waitFor,
  waitForSettled,
  windshiftError,
} from "./helpers.js";
import { recordingLogger } from "./log.js";

const env = useServer();

async function setup(consumer: { processingTimeoutMs?: number; maxDeliveryAttempts?: number } = {}) {
  return streamWithWorker(env.events, consumer);
}

async function publishTexts(stream: string, texts: readonly string[], subject = "a"): Promise<void> {
  for (const text of texts) await env.events.publish(`${stream}.${subject}`, TestEventSchema, { text });
}

function allSettled(stream: string, consumer: string, count: number): Promise<void> {
  return waitForSettled(env.nc, stream, consumer, count);
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Lets other work run for a random number of turns: handlers that take different times. */
async function jiggle(): Promise<void> {
  const turns = Math.floor(Math.random() * 4);
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

describe("process: handlers", () => {
  it("routes each type to its handler, typed, and acks what they return from", async () => {
    const { stream, consumer } = await setup();
    const seen: string[] = [];
    const handlers = router()
      .on(TestEventSchema, (data, event) => {
        expectTypeOf(data).toEqualTypeOf<TestEvent>();
        expectTypeOf(event).toEqualTypeOf<Event<TestEvent>>();
        expect(event.data).toBe(data);
        seen.push(`test:${data.text}`);
      })
      .on(OtherEventSchema, async (data) => {
        expectTypeOf(data).toEqualTypeOf<OtherEvent>();
        seen.push(`other:${data.name}`);
      });
    await using processor = await env.events.process(stream, consumer, handlers);
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "one" });
    await env.events.publish(`${stream}.b`, OtherEventSchema, { name: "two" });
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "three" });
    await allSettled(stream, consumer, 3);
    expect(seen).toEqual(["test:one", "other:two", "test:three"]);
    await expectStats(processor, { acked: 3, failed: 0, running: 0, waiting: 0 });
  });

  it("takes one handler for a schema with handle(), or a function for every event", async () => {
    const one = await setup();
    const texts: string[] = [];
    await using first = await env.events.process(
      one.stream,
      one.consumer,
      handle(TestEventSchema, (data) => {
        texts.push(data.text);
      }),
    );
    await publishTexts(one.stream, ["x", "y"]);
    await allSettled(one.stream, one.consumer, 2);
    expect(texts).toEqual(["x", "y"]);
    await expectStats(first, { acked: 2 });

    const two = await setup();
    const types: string[] = [];
    await using second = await env.events.process(two.stream, two.consumer, (event) => {
      types.push(event.type);
    });
    await env.events.publish(`${two.stream}.a`, TestEventSchema, { text: "x" });
    await env.events.publish(`${two.stream}.a`, OtherEventSchema, { name: "y" });
    await allSettled(two.stream, two.consumer, 2);
    expect(types).toEqual([TestEventSchema.typeName, OtherEventSchema.typeName]);
    await expectStats(second, { acked: 2 });
  });

  it("leaves events the handler settled itself alone", async () => {
    const { stream, consumer } = await setup();
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, async (data, event) => {
        if (data.text === "mine") await event.ack();
        else void event.ack(); // settling without waiting must not fail the processor either
      }),
    );
    await publishTexts(stream, ["mine", "unawaited"]);
    await allSettled(stream, consumer, 2);
    await waitFor(() => processor.stats.settledByHandler === 2, { what: "both counted as settled by the handler" });
    expect(processor.stats).toMatchObject({ acked: 0, failed: 0 });
  });

  it("runs middleware around the handler, outermost first, and lets it skip the handler", async () => {
    const { stream, consumer } = await setup();
    const trail: string[] = [];
    const outer: Middleware = async (event, next) => {
      trail.push(`outer>${event.id}`);
      await next();
      trail.push(`<outer${event.id}`);
    };
    const skipSecond: Middleware = async (event, next) => {
      if (event.id === 2) return;
      await next();
    };
    await using _ = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (data) => {
        trail.push(`handler:${data.text}`);
      }),
      { middleware: [outer, skipSecond] },
    );
    await publishTexts(stream, ["a", "b"]);
    await allSettled(stream, consumer, 2);
    expect(trail).toEqual(["outer>1", "handler:a", "<outer1", "outer>2", "<outer2"]);
  });
});

describe("process: concurrency and order", () => {
  it("never runs more handlers at once than `concurrency`, and does reach it", async () => {
    const { stream, consumer } = await setup();
    const total = 40;
    const concurrency = 4;
    await publishTexts(
      stream,
      Array.from({ length: total }, (_, i) => `e${i}`),
    );
    let running = 0;
    let most = 0;
    let started = 0;
    let gate = deferred();
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, async () => {
        running++;
        started++;
        most = Math.max(most, running);
        // Hold every handler until the limit is reached (or nothing more can start).
        if (running === concurrency || started === total) {
          gate.resolve();
          gate = deferred();
        } else {
          await gate.promise;
        }
        await jiggle();
        running--;
      }),
      { concurrency },
    );
    await allSettled(stream, consumer, total);
    expect(most).toBe(concurrency);
    await expectStats(processor, { acked: total });
  });

  it("handles events with the same key one at a time in stream order, other keys in parallel", async () => {
    const { stream, consumer } = await setup();
    const keys = ["k1", "k2", "k3", "k4", "k5"];
    const perKey = 20;
    // Interleaved publishing: k1#0, k2#0, …, k5#0, k1#1, …
    for (let i = 0; i < perKey; i++) {
      for (const key of keys) await env.events.publish(`${stream}.${key}`, TestEventSchema, { text: String(i) });
    }
    const order = new Map<string, number[]>();
    const busy = new Map<string, number>();
    let running = 0;
    let most = 0;
    let mostPerKey = 0;
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, async (data, event) => {
        running++;
        most = Math.max(most, running);
        const now = (busy.get(event.subject) ?? 0) + 1;
        busy.set(event.subject, now);
        mostPerKey = Math.max(mostPerKey, now);
        await jiggle();
        order.set(event.subject, [...(order.get(event.subject) ?? []), Number(data.text)]);
        busy.set(event.subject, now - 1);
        running--;
      }),
      { concurrency: 4, orderBy: "subject" },
    );
    await allSettled(stream, consumer, keys.length * perKey);
    for (const key of keys) {
      expect(order.get(`${stream}.${key}`)).toEqual(Array.from({ length: perKey }, (_, i) => i));
    }
    expect(mostPerKey).toBe(1);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(4);
    expect(processor.stats.waiting).toBe(0);
  });

  it("orders by a key function", async () => {
    const { stream, consumer } = await setup();
    for (let i = 0; i < 30; i++) {
      await env.events.publish(`${stream}.e${i}`, TestEventSchema, { text: `${i % 3}:${i}` });
    }
    const seen = new Map<string, number[]>();
    await using _ = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, async (data) => {
        const [key, n] = data.text.split(":") as [string, string];
        await jiggle();
        seen.set(key, [...(seen.get(key) ?? []), Number(n)]);
      }),
      { concurrency: 3, orderBy: (event) => (event.data as TestEvent).text.split(":")[0] as string },
    );
    await allSettled(stream, consumer, 30);
    for (const key of ["0", "1", "2"]) {
      const got = seen.get(key) ?? [];
      expect(got).toEqual([...got].sort((a, b) => a - b));
      expect(got).toHaveLength(10);
    }
  });
});

describe("process: failures", () => {
  it("retries an INVALID_DATA error that is not about the event's own data", async () => {
    const { stream, consumer } = await setup();
    const attempts: number[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        attempts.push(event.deliveryAttempt);
        if (event.deliveryAttempt === 1) throw new WindshiftError(ErrorCode.InvalidData, "a message of our own");
      }),
      { backoff: { initialDelayMs: 10 } },
    );
    await publishTexts(stream, ["x"]);
    await allSettled(stream, consumer, 1);
    expect(attempts).toEqual([1, 2]);
    await expectStats(processor, { retried: 1, acked: 1, rejected: 0 });
  });

  it("retries a throwing handler after the backoff delays, by delivery attempt", async () => {
    const { stream, consumer } = await setup();
    const attempts: { attempt: number; at: number }[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        attempts.push({ attempt: event.deliveryAttempt, at: performance.now() });
        if (event.deliveryAttempt < 3) throw new Error("not yet");
      }),
      { backoff: { initialDelayMs: 300, multiplier: 2, jitter: 0 } },
    );
    await publishTexts(stream, ["retry me"]);
    await allSettled(stream, consumer, 1);
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    const [first, second, third] = attempts as unknown as [{ at: number }, { at: number }, { at: number }];
    // The server holds a nak'ed event for at least the delay; allow generous scheduling slack above.
    expect(second.at - first.at).toBeGreaterThanOrEqual(290);
    expect(second.at - first.at).toBeLessThan(5_000);
    expect(third.at - second.at).toBeGreaterThanOrEqual(590);
    expect(third.at - second.at).toBeLessThan(5_000);
    await expectStats(processor, { failed: 2, retried: 2, acked: 1 });
  });

  it("asks a backoff decider for the delay, and rejects permanently when it says so", async () => {
    const { stream, consumer } = await setup();
    const calls: number[] = [];
    const asked: string[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        calls.push(event.deliveryAttempt);
        throw new Error(event.deliveryAttempt === 1 ? "transient" : "fatal");
      }),
      {
        backoff: (event, error) => {
          asked.push(`${event.deliveryAttempt}:${(error as Error).message}`);
          return (error as Error).message === "fatal" ? -1 : 50;
        },
      },
    );
    await publishTexts(stream, ["x"]);
    await allSettled(stream, consumer, 1);
    await waitFor(() => processor.stats.rejected === 1, { what: "the permanent rejection" });
    expect(calls).toEqual([1, 2]);
    expect(asked).toEqual(["1:transient", "2:fatal"]);
  });

  it("does not retry a PermanentError, and logs the rejection without a dead-letter subject", async () => {
    const { stream, consumer } = await setup({ processingTimeoutMs: 1_000 });
    const logger = recordingLogger();
    const events = await env.client({ logger });
    let calls = 0;
    await using processor = await events.process(
      stream,
      consumer,
      handle(TestEventSchema, () => {
        calls++;
        throw new PermanentError("bad order");
      }),
      { backoff: { initialDelayMs: 10 } },
    );
    await publishTexts(stream, ["bad"]);
    await allSettled(stream, consumer, 1);
    expect(calls).toBe(1);
    await expectStats(processor, { failed: 1, rejected: 1, retried: 0 });
    expect((await consumerState(env.nc, stream, consumer)).redelivered).toBe(0);
    const line = logger.lines.find((l) => l.level === "error");
    expect(line?.message).toMatch(/rejected permanently/);
    expect(line?.fields).toMatchObject({ id: 1, reason: "permanent", error: "PermanentError: bad order" });
  });

  it("keeps going past a poison event: undecodable data is rejected permanently, not handed to the handler", async () => {
    const { stream, consumer } = await setup();
    const h = natsHeaders();
    h.set("WS-Data-Type", TestEventSchema.typeName);
    await env.nc.request(`${stream}.a`, new Uint8Array([0xff, 0xff, 0xff]), { headers: h, timeout: 5_000 });
    await publishTexts(stream, ["fine"]);
    const texts: string[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (data) => {
        texts.push(data.text);
      }),
    );
    await allSettled(stream, consumer, 2);
    expect(texts).toEqual(["fine"]);
    await expectStats(processor, { acked: 1, rejected: 1 });
  });

  it("gives up after maxAttempts", async () => {
    const { stream, consumer } = await setup();
    const calls: number[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        calls.push(event.deliveryAttempt);
        throw new Error("always");
      }),
      { maxAttempts: 3, backoff: { initialDelayMs: 10 } },
    );
    await publishTexts(stream, ["x"]);
    await allSettled(stream, consumer, 1);
    expect(calls).toEqual([1, 2, 3]);
    await expectStats(processor, { failed: 3, retried: 2, rejected: 1 });
  });

  it("never gives an event more attempts than the consumer's maxDeliveryAttempts", async () => {
    const { stream, consumer } = await setup({ maxDeliveryAttempts: 2 });
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const calls: number[] = [];
    await using processor = await events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        calls.push(event.deliveryAttempt);
        throw new Error("always");
      }),
      { maxAttempts: 5, backoff: { initialDelayMs: 10 } },
    );
    await publishTexts(stream, ["x"]);
    await allSettled(stream, consumer, 1);
    expect(calls).toEqual([1, 2]);
    await expectStats(processor, { rejected: 1 });
    expect(logger.lines.some((l) => l.level === "warn" && /maxDeliver/.test(l.message))).toBe(true);
  });
});

describe("process: unknown types", () => {
  it("rejects unknown types permanently by default", async () => {
    const { stream, consumer } = await setup();
    let handled = 0;
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, () => {
        handled++;
      }),
    );
    await env.events.publish(`${stream}.a`, OtherEventSchema, { name: "stranger" });
    await publishTexts(stream, ["known"]);
    await allSettled(stream, consumer, 2);
    expect(handled).toBe(1);
    await expectStats(processor, { acked: 1, rejected: 1, retried: 0 });
  });

  it('gives unknown types back with "nak", up to maxAttempts', async () => {
    const { stream, consumer } = await setup();
    const attempts: number[] = [];
    const count: Middleware = async (event, next) => {
      attempts.push(event.deliveryAttempt);
      await next();
    };
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, () => {}).otherwise("nak"),
      { middleware: [count], maxAttempts: 3, backoff: { initialDelayMs: 10 } },
    );
    await env.events.publish(`${stream}.a`, OtherEventSchema, { name: "stranger" });
    await allSettled(stream, consumer, 1);
    expect(attempts).toEqual([1, 2, 3]);
    await expectStats(processor, { retried: 2, rejected: 1 });
  });

  it("hands unknown types to a fallback handler", async () => {
    const { stream, consumer } = await setup();
    const fallback: string[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, () => {}).otherwise((event) => {
        fallback.push(event.decode(OtherEventSchema).name);
      }),
    );
    await env.events.publish(`${stream}.a`, OtherEventSchema, { name: "stranger" });
    await allSettled(stream, consumer, 1);
    expect(fallback).toEqual(["stranger"]);
    await expectStats(processor, { acked: 1 });
  });

  it("applies the unknown-type policy even when the orderBy key cannot be read from such an event", async () => {
    const { stream, consumer } = await setup();
    const fallback: string[] = [];
    const handled: string[] = [];
    await using _ = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (data) => {
        handled.push(data.text);
      }).otherwise((event) => {
        fallback.push(event.type);
      }),
      { orderBy: (event) => (event.data as TestEvent).text },
    );
    await env.events.publish(`${stream}.a`, OtherEventSchema, { name: "stranger" });
    await publishTexts(stream, ["known"]);
    await allSettled(stream, consumer, 2);
    expect(fallback).toEqual([OtherEventSchema.typeName]);
    expect(handled).toEqual(["known"]);
  });
});

describe("process: closing", () => {
  it("waits for running handlers, gives back what it did not start, and loses nothing", async () => {
    const { stream, consumer } = await setup();
    await publishTexts(
      stream,
      Array.from({ length: 10 }, (_, i) => `e${i}`),
    );
    const release = deferred();
    const started = deferred();
    const handled: string[] = [];
    const processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, async (data) => {
        if (data.text === "e0") {
          started.resolve();
          await release.promise;
        }
        handled.push(data.text);
      }),
      // One subject: everything waits behind e0.
      { concurrency: 4, orderBy: "subject" },
    );
    await started.promise;
    await waitFor(() => processor.stats.waiting === 9, { what: "nine events waiting behind e0" });
    let closed = false;
    const closing = processor.close().then(() => {
      closed = true;
    });
    expect(processor.stats.waiting).toBe(0);

    // The nine waiting events go back to the server at once: another
    // processor gets them, in order, while e0 is still being handled here.
    const rest: string[] = [];
    await using _ = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (data) => {
        rest.push(data.text);
      }),
    );
    await waitFor(() => rest.length === 9, { what: "the nine given-back events" });
    expect(rest).toEqual(Array.from({ length: 9 }, (_, i) => `e${i + 1}`));
    expect(closed).toBe(false);
    release.resolve();
    await closing;
    expect(handled).toEqual(["e0"]);
    await allSettled(stream, consumer, 10);
    await expectStats(processor, { acked: 1 });
  });

  it("gives back the events of handlers that outlast closeTimeoutMs", async () => {
    const { stream, consumer } = await setup();
    await publishTexts(stream, ["slow"]);
    const stuck = deferred();
    const started = deferred();
    let handlerSignal: AbortSignal | undefined;
    const processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, async (_data, _event, signal) => {
        handlerSignal = signal;
        started.resolve();
        await stuck.promise;
      }),
      { closeTimeoutMs: 200 },
    );
    await started.promise;
    expect(handlerSignal?.aborted).toBe(false);
    await processor.close();
    // The handler is told that nobody waits for it any more.
    expect(handlerSignal?.aborted).toBe(true);
    expect(handlerSignal?.reason).toMatchObject({ code: ErrorCode.Closed });
    const again: string[] = [];
    await using _ = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (data) => {
        again.push(data.text);
      }),
    );
    await allSettled(stream, consumer, 1);
    expect(again).toEqual(["slow"]);
    // The late handler's return settles nothing: its event was given back.
    stuck.resolve();
    await waitFor(() => processor.stats.running === 0, { what: "the late handler to return" });
    expect(processor.stats).toMatchObject({ acked: 0, settledByHandler: 0, failed: 0 });
  });

  it("closes on abort, and resolves `closed` with the error when the consumer is deleted under it", async () => {
    const { stream, consumer } = await setup();
    const controller = new AbortController();
    const processor = await env.events.process(stream, consumer, () => {}, { signal: controller.signal });
    controller.abort();
    await expect(processor.closed).resolves.toBeUndefined();

    const logger = recordingLogger();
    const events = await env.client({ logger });
    const doomed: Processor = await events.process(stream, consumer, () => {});
    const jsm = await jetstreamManager(env.nc);
    await jsm.consumers.delete(stream, consumer);
    const err = await doomed.closed;
    expect(err?.code).toBe(ErrorCode.NotFound);
    await doomed.close(); // still safe, never rejects
    expect(logger.lines.some((l) => l.level === "error" && l.message === "processor stopped")).toBe(true);
  });
});

describe("process: validation", () => {
  it("rejects bad arguments with VALIDATION errors before touching the server", async () => {
    const { stream, consumer } = await setup();
    const ok = handle(TestEventSchema, () => {});
    const bad: [unknown, unknown][] = [
      [{}, undefined],
      [ok, { concurrency: 0 }],
      [ok, { concurrency: 1.5 }],
      [ok, { orderBy: "type" }],
      [ok, { maxAttempts: 0 }],
      [ok, { backoff: { initialDelayMs: -1 } }],
      [ok, { backoff: { jitter: 2 } }],
      [ok, { backoff: { initialDelayMs: 10, maxDelayMs: 5 } }],
      [ok, { backoff: { delay: 5 } }],
      [ok, { deadLetter: { subject: "dlq.>" } }],
      [ok, { deadLetter: {} }],
      [ok, { middleware: [42] }],
      [ok, { concurency: 2 }],
    ];
    for (const [handlers, options] of bad) {
      const err = await windshiftError(() => env.events.process(stream, consumer, handlers as never, options as never));
      expect(err.code, JSON.stringify(options)).toBe(ErrorCode.Validation);
    }
    expect(
      (
        await windshiftError(() =>
          router()
            .on(TestEventSchema, () => {})
            .on(TestEventSchema, () => {}),
        )
      ).code,
    ).toBe(ErrorCode.Validation);
    expect((await windshiftError(() => env.events.process(stream, "nope", ok))).code).toBe(ErrorCode.NotFound);
  });
});
