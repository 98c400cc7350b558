import { expect, it } from "vitest";
import { type TestEvent, TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, handle } from "../../src/index.js";
import { describeEngines, streamWithWorker } from "./harness.js";
import { deferred, expectStats, jiggle, publishTexts } from "./process-support.js";

describeEngines("process: concurrency and order", (env) => {
  it("never runs more handlers at once than `concurrency`, and does reach it", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const total = 40;
    const concurrency = 4;
    await publishTexts(
      env,
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
    await env.settled(stream, consumer, total);
    expect(most).toBe(concurrency);
    await expectStats(env, processor, { acked: total });
  });

  it("handles events with the same key one at a time in stream order, other keys in parallel", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
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
    await env.settled(stream, consumer, keys.length * perKey);
    for (const key of keys) {
      expect(order.get(`${stream}.${key}`)).toEqual(Array.from({ length: perKey }, (_, i) => i));
    }
    expect(mostPerKey).toBe(1);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(4);
    expect(processor.stats.waiting).toBe(0);
  });

  it("orders by a key function", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
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
    await env.settled(stream, consumer, 30);
    for (const key of ["0", "1", "2"]) {
      const got = seen.get(key) ?? [];
      expect(got).toEqual([...got].sort((a, b) => a - b));
      expect(got).toHaveLength(10);
    }
  });
});

describeEngines("process: closing", (env) => {
  it("waits for running handlers, gives back what it did not start, and loses nothing", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishTexts(
      env,
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
    await env.eventually(() => processor.stats.waiting === 9, { what: "nine events waiting behind e0" });
    let closed = false;
    const closing = processor.close().then(() => {
      closed = true;
    });
    expect(processor.stats.waiting).toBe(0);

    // The nine waiting events go back to the engine at once: another
    // processor gets them, in order, while e0 is still being handled here.
    const rest: string[] = [];
    await using _ = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (data) => {
        rest.push(data.text);
      }),
    );
    await env.eventually(() => rest.length === 9, { what: "the nine given-back events" });
    expect(rest).toEqual(Array.from({ length: 9 }, (_, i) => `e${i + 1}`));
    expect(closed).toBe(false);
    release.resolve();
    await closing;
    expect(handled).toEqual(["e0"]);
    await env.settled(stream, consumer, 10);
    await expectStats(env, processor, { acked: 1 });
  });

  it("gives back the events of handlers that outlast closeTimeoutMs", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishTexts(env, stream, ["slow"]);
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
    await env.settled(stream, consumer, 1);
    expect(again).toEqual(["slow"]);
    // The late handler's return settles nothing: its event was given back.
    stuck.resolve();
    await env.eventually(() => processor.stats.running === 0, { what: "the late handler to return" });
    expect(processor.stats).toMatchObject({ acked: 0, settledByHandler: 0, failed: 0 });
    await expect(processor.closed).resolves.toBeUndefined();
  });

  it("closes on abort: `closed` resolves with undefined, nothing more is handled", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const controller = new AbortController();
    const handled: string[] = [];
    const processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (data) => {
        handled.push(data.text);
      }),
      { signal: controller.signal },
    );
    await publishTexts(env, stream, ["before"]);
    await env.settled(stream, consumer, 1);
    controller.abort();
    await expect(processor.closed).resolves.toBeUndefined();
    await processor.close(); // still safe, never rejects
    await publishTexts(env, stream, ["after"]);
    await env.elapse(200);
    expect(handled).toEqual(["before"]);
    expect(await env.progress(stream, consumer)).toMatchObject({ ackFloor: 1, pending: 1 });
  });
});
