import { expect, expectTypeOf, it } from "vitest";
import {
  type OtherEvent,
  OtherEventSchema,
  type TestEvent,
  TestEventSchema,
} from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, type Event, handle, type Middleware, router } from "../../src/index.js";
import { windshiftError } from "../helpers.js";
import { describeEngines, streamWithWorker } from "./harness.js";
import { expectStats, publishTexts } from "./process-support.js";

describeEngines("process: handlers", (env) => {
  it("routes each type to its handler, typed, and acks what they return from", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
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
    await env.settled(stream, consumer, 3);
    expect(seen).toEqual(["test:one", "other:two", "test:three"]);
    await expectStats(env, processor, { acked: 3, failed: 0, running: 0, waiting: 0 });
  });

  it("takes one handler for a schema with handle(), or a function for every event", async () => {
    const one = await streamWithWorker(env.events);
    const texts: string[] = [];
    await using first = await env.events.process(
      one.stream,
      one.consumer,
      handle(TestEventSchema, (data) => {
        texts.push(data.text);
      }),
    );
    await publishTexts(env, one.stream, ["x", "y"]);
    await env.settled(one.stream, one.consumer, 2);
    expect(texts).toEqual(["x", "y"]);
    await expectStats(env, first, { acked: 2 });

    const two = await streamWithWorker(env.events);
    const types: string[] = [];
    await using second = await env.events.process(two.stream, two.consumer, (event) => {
      types.push(event.type);
    });
    await env.events.publish(`${two.stream}.a`, TestEventSchema, { text: "x" });
    await env.events.publish(`${two.stream}.a`, OtherEventSchema, { name: "y" });
    await env.settled(two.stream, two.consumer, 2);
    expect(types).toEqual([TestEventSchema.typeName, OtherEventSchema.typeName]);
    await expectStats(env, second, { acked: 2 });
  });

  it("leaves events the handler settled itself alone", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, async (data, event) => {
        if (data.text === "mine") await event.ack();
        else void event.ack(); // settling without waiting must not fail the processor either
      }),
    );
    await publishTexts(env, stream, ["mine", "unawaited"]);
    await env.settled(stream, consumer, 2);
    await env.eventually(() => processor.stats.settledByHandler === 2, {
      what: "both counted as settled by the handler",
    });
    expect(processor.stats).toMatchObject({ acked: 0, failed: 0 });
  });

  it("runs middleware around the handler, outermost first, and lets it skip the handler", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
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
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (data) => {
        trail.push(`handler:${data.text}`);
      }),
      { middleware: [outer, skipSecond] },
    );
    await publishTexts(env, stream, ["a", "b"]);
    await env.settled(stream, consumer, 2);
    expect(trail).toEqual(["outer>1", "handler:a", "<outer1", "outer>2", "<outer2"]);
    // The skipped event is acked as if handled.
    await expectStats(env, processor, { acked: 2, failed: 0 });
  });
});

describeEngines("process: unknown types", (env) => {
  it("rejects unknown types permanently by default", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    let handled = 0;
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, () => {
        handled++;
      }),
    );
    await env.events.publish(`${stream}.a`, OtherEventSchema, { name: "stranger" });
    await publishTexts(env, stream, ["known"]);
    await env.settled(stream, consumer, 2);
    expect(handled).toBe(1);
    await expectStats(env, processor, { acked: 1, rejected: 1, retried: 0 });
  });

  it('gives unknown types back with "nak", up to maxAttempts', async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
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
    await env.settled(stream, consumer, 1);
    expect(attempts).toEqual([1, 2, 3]);
    await expectStats(env, processor, { retried: 2, rejected: 1 });
  });

  it("hands unknown types to a fallback handler", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const fallback: string[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, () => {}).otherwise((event) => {
        fallback.push(event.decode(OtherEventSchema).name);
      }),
    );
    await env.events.publish(`${stream}.a`, OtherEventSchema, { name: "stranger" });
    await env.settled(stream, consumer, 1);
    expect(fallback).toEqual(["stranger"]);
    await expectStats(env, processor, { acked: 1 });
  });

  it("applies the unknown-type policy even when the orderBy key cannot be read from such an event", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const fallback: string[] = [];
    const handled: string[] = [];
    await using processor = await env.events.process(
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
    await publishTexts(env, stream, ["known"]);
    await env.settled(stream, consumer, 2);
    expect(fallback).toEqual([OtherEventSchema.typeName]);
    expect(handled).toEqual(["known"]);
    await expectStats(env, processor, { acked: 2, failed: 0 });
  });
});

describeEngines("process: validation", (env) => {
  it("rejects bad arguments with VALIDATION errors before touching the engine", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
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
    // None of the refused calls started a processor: the consumer's events are all still there.
    await publishTexts(env, stream, ["still here"]);
    expect(await env.progress(stream, consumer)).toMatchObject({ pending: 1, unsettled: 0 });
  });
});
