import { expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, type Event, handle } from "../../src/index.js";
import { describeEngines, type EngineEnv, nextOf, streamWithWorker } from "./harness.js";
import { deferred, jiggle, publishTexts } from "./process-support.js";
import { publishN, until, windshiftError } from "./support.js";

/** `work`, failing after `ms` of real time: for what must finish without the engine's time passing. */
async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A processor whose handler holds the one event published (`text`) until
 * `gate` resolves; returned once the handler has started.
 */
async function heldProcessor(env: EngineEnv, text: string) {
  const { stream, consumer } = await streamWithWorker(env.events);
  await publishTexts(env, stream, [text]);
  const started = deferred();
  const gate = deferred();
  const processor = await env.events.process(
    stream,
    consumer,
    handle(TestEventSchema, async () => {
      started.resolve();
      await gate.promise;
    }),
  );
  await started.promise;
  return { stream, consumer, processor, gate };
}

describeEngines("idle: a processor", (env) => {
  it("resolves only once every published event was handled and acked", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const total = 20;
    await publishTexts(
      env,
      stream,
      Array.from({ length: total }, (_, i) => `e${i}`),
    );
    let handled = 0;
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, async () => {
        await jiggle();
        handled++;
      }),
      { concurrency: 3 },
    );
    // What was true the moment idle() resolved, before anything else ran.
    const atIdle = processor.idle({ timeoutMs: 10_000 }).then(() => ({
      handled,
      acked: processor.stats.acked,
      running: processor.stats.running,
    }));
    expect(await until(env, atIdle, "the processor to be idle")).toEqual({ handled: total, acked: total, running: 0 });
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: total, unsettled: 0, pending: 0 });
  });

  it("waits for events published after the call", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishTexts(env, stream, ["first"]);
    const started = deferred();
    const gate = deferred();
    const handled: string[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, async (data) => {
        if (data.text === "first") {
          started.resolve();
          await gate.promise;
        }
        handled.push(data.text);
      }),
    );
    await started.promise;
    const atIdle = processor.idle({ timeoutMs: 10_000 }).then(() => [...handled]);
    await publishTexts(env, stream, ["second", "third", "fourth"]);
    gate.resolve();
    expect(await until(env, atIdle, "the processor to be idle")).toEqual(["first", "second", "third", "fourth"]);
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: 4, unsettled: 0, pending: 0 });
  });

  it("waits for a retry the consumer still owes after a failed attempt", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishTexts(env, stream, ["flaky"]);
    const attempts: number[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        attempts.push(event.deliveryAttempt);
        if (event.deliveryAttempt === 1) throw new Error("first attempt fails");
      }),
      { backoff: { initialDelayMs: 300, jitter: 0 } },
    );
    // Between the attempts nothing runs here: only the consumer knows a redelivery is due.
    const atIdle = processor.idle({ timeoutMs: 10_000 }).then(() => [...attempts]);
    expect(await until(env, atIdle, "the processor to be idle")).toEqual([1, 2]);
    expect(processor.stats).toMatchObject({ failed: 1, retried: 1, acked: 1 });
  });

  it("times out with TIMEOUT, saying what was outstanding", async () => {
    const { stream, consumer, processor, gate } = await heldProcessor(env, "stuck");
    await using _processor = processor;
    const failure = processor.idle({ timeoutMs: 300 }).catch((err: unknown) => err);
    const err = await until(env, failure, "idle() to time out");
    expect(err).toMatchObject({ code: ErrorCode.Timeout });
    const message = (err as Error).message;
    expect(message).toContain(`the processor of ${stream}/${consumer} is not idle after 300 ms`);
    expect(message).toContain("1 handler running");
    expect(message).toContain("1 event handed out and not settled (id 1)");
    expect((err as { details: unknown }).details).toMatchObject({ running: 1, unsettled: 1, unsettledIds: [1] });
    // The processor carries on; released, it becomes idle.
    gate.resolve();
    await until(env, processor.idle(), "the processor to be idle");
    expect(processor.stats.acked).toBe(1);
  });

  it("honours an AbortSignal, and leaves the processor running", async () => {
    const { processor, gate } = await heldProcessor(env, "held");
    await using _processor = processor;
    const aborted = new AbortController();
    aborted.abort(new Error("given up"));
    expect((await windshiftError(processor.idle({ signal: aborted.signal }))).code).toBe(ErrorCode.Aborted);
    const controller = new AbortController();
    const waiting = processor.idle({ signal: controller.signal, timeoutMs: 60_000 });
    controller.abort();
    const err = await within(windshiftError(waiting), 2_000, "the aborted idle()");
    expect(err.code).toBe(ErrorCode.Aborted);
    gate.resolve();
    await until(env, processor.idle(), "the processor to be idle");
    expect(processor.stats.acked).toBe(1);
  });

  it("resolves at once on an idle processor, without the engine's time passing", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, () => {}),
    );
    const before = env.now();
    await within(processor.idle(), 2_000, "idle() of a processor with nothing to do");
    if (env.caps.virtualTime) expect(env.now()).toBe(before);
    await publishTexts(env, stream, ["one"]);
    await until(env, processor.idle(), "the processor to be idle");
    const again = env.now();
    await within(processor.idle(), 2_000, "idle() of a processor that is done");
    if (env.caps.virtualTime) expect(env.now()).toBe(again);
    expect(processor.stats.acked).toBe(1);
  });

  it("needs none of the engine's time when no retry or redelivery is due", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    let handled = 0;
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, async () => {
        await jiggle();
        handled++;
      }),
      { concurrency: 2 },
    );
    const before = env.now();
    await publishTexts(env, stream, ["a", "b", "c", "d", "e"]);
    await within(processor.idle({ timeoutMs: 10_000 }), 5_000, "idle() after five events");
    if (env.caps.virtualTime) expect(env.now()).toBe(before);
    expect(handled).toBe(5);
    expect(processor.stats.acked).toBe(5);
  });

  it("rejects with CLOSED when the processor closes first, and once it is closed", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishTexts(env, stream, ["held"]);
    const started = deferred();
    const gate = deferred();
    const processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, async () => {
        started.resolve();
        await gate.promise;
      }),
      { closeTimeoutMs: 50 },
    );
    await started.promise;
    const waiting = windshiftError(processor.idle({ timeoutMs: 60_000 }));
    await processor.close();
    expect((await within(waiting, 2_000, "idle() of a closed processor")).code).toBe(ErrorCode.Closed);
    expect((await windshiftError(processor.idle())).code).toBe(ErrorCode.Closed);
    gate.resolve();
  });

  it("refuses bad options with VALIDATION", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await using processor = await env.events.process(stream, consumer, () => {});
    for (const options of [{ timeoutMs: -1 }, { timeoutMs: 1.5 }, { signal: {} }, { wait: 1 }, "soon"]) {
      const err = await windshiftError(processor.idle(options as never));
      expect(err.code).toBe(ErrorCode.Validation);
    }
  });
});

describeEngines("idle: a subscription", (env) => {
  it("resolves once its loop has acked every event", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const total = 10;
    await publishN(env.events, `${stream}.a`, total);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    let handled = 0;
    const loop = (async () => {
      for await (const event of sub) {
        await jiggle();
        handled++;
        await event.ack();
      }
    })();
    const atIdle = sub.idle({ timeoutMs: 10_000 }).then(() => handled);
    expect(await until(env, atIdle, "the subscription to be idle")).toBe(total);
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: total, unsettled: 0, pending: 0 });
    await sub.close();
    await loop;
  });

  it("times out naming what it holds: buffered and unsettled events", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishN(env.events, `${stream}.a`, 3);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, closeTimeoutMs: 0 });
    const first = await nextOf(sub[Symbol.asyncIterator]());
    await env.eventually(async () => (await env.progress(stream, consumer)).unsettled === 3, {
      what: "all three delivered",
    });
    const err = await until(env, windshiftError(sub.idle({ timeoutMs: 200 })), "idle() to time out");
    expect(err.code).toBe(ErrorCode.Timeout);
    expect(err.message).toContain(`the subscription of ${stream}/${consumer} is not idle after 200 ms`);
    expect(err.message).toContain("2 events buffered");
    expect(err.message).toContain("1 event handed out and not settled (id 1)");
    await first.ack();
  });

  it("times out naming what only the consumer knows: an event another subscriber holds", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishN(env.events, `${stream}.a`, 1);
    await using holder = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, closeTimeoutMs: 0 });
    const held: Event = await nextOf(holder[Symbol.asyncIterator]());
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const err = await until(env, windshiftError(sub.idle({ timeoutMs: 300 })), "idle() to time out");
    expect(err.code).toBe(ErrorCode.Timeout);
    expect(err.message).toContain("the consumer has 0 events not delivered yet and 1 event delivered and not settled");
    expect(err.details).toMatchObject({ consumerPending: 0, consumerUnsettled: 1, unsettled: 0, buffered: 0 });
    // Settled by its holder, the consumer has nothing left: both are idle.
    const idle = Promise.all([sub.idle({ timeoutMs: 10_000 }), holder.idle({ timeoutMs: 10_000 })]);
    await held.ack();
    await until(env, idle, "both subscriptions to be idle");
  });

  it("rejects with CLOSED once the subscription is closed", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    await sub.close();
    expect((await windshiftError(sub.idle())).code).toBe(ErrorCode.Closed);
  });
});
