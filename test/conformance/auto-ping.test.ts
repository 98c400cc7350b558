import { expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, type Event, handle, type Subscription } from "../../src/index.js";
import { recordingLogger } from "../log.js";
import { describeEngines, expectQuiet, nextOf, streamWithWorker } from "./harness.js";
import { deferred } from "./process-support.js";
import { arrival, publishN, windshiftError } from "./support.js";

function iter<T extends Event>(sub: Subscription & AsyncIterable<T>): AsyncIterator<T> {
  return sub[Symbol.asyncIterator]() as AsyncIterator<T>;
}

type Line = ReturnType<typeof recordingLogger>["lines"][number];

const HELD = "event held unsettled for more than 3 processing timeouts";
const GIVEN_BACK = "close() gave back events that were handed out and never settled";
const PING_STOPPED = "auto-ping stopped";

function warnings(lines: readonly Line[], start: string): Line[] {
  return lines.filter((line) => line.level === "warn" && line.message.startsWith(start));
}

/** The `heldMs` field of a log line; NaN when it has none. */
function heldMs(line: Line | undefined): number {
  const value = (line?.fields as Record<string, unknown> | undefined)?.heldMs;
  return typeof value === "number" ? value : Number.NaN;
}

describeEngines("auto-ping: warnings", (env) => {
  it("warns once about an event auto-ping has kept unsettled for more than 3 processing timeouts", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 500 });
    await publishN(env.events, `${stream}.a`, 2);
    await using sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const forgotten = await nextOf(it);
    const worked = await nextOf(it);
    // A handler that pings says it is working on its event: no news.
    await worked.ping();
    await env.elapse(1_000);
    expect(warnings(logger.lines, HELD)).toEqual([]);
    await env.eventually(() => warnings(logger.lines, HELD).length > 0, { what: "the warning" });
    await env.elapse(1_500);
    const lines = warnings(logger.lines, HELD);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.fields).toMatchObject({ stream, consumer, id: 1, processingTimeoutMs: 500 });
    expect(heldMs(lines[0])).toBeGreaterThan(1_500);
    await forgotten.ack();
    await worked.ack();
    await env.settled(stream, consumer, 2);
  });

  it("close() warns once about the events it gives back unsettled; settled or never handed out, it says nothing", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishN(env.events, `${stream}.a`, 3);
    const sub = await events.subscribe(stream, consumer, { schema: TestEventSchema, closeTimeoutMs: 50 });
    const it = iter(sub);
    await nextOf(it);
    await nextOf(it);
    await env.eventually(async () => (await env.progress(stream, consumer)).unsettled === 3, {
      what: "all three delivered",
    });
    await sub.close();
    const lines = warnings(logger.lines, GIVEN_BACK);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.fields).toMatchObject({ stream, consumer, count: 2, ids: [1, 2], waitedMs: 50 });
    expect(heldMs(lines[0])).toBeGreaterThanOrEqual(0);

    // All three come again; settled, closing is silent, and so is leaving the loop.
    logger.lines.length = 0;
    const again = await events.subscribe(stream, consumer, { schema: TestEventSchema, closeTimeoutMs: 50 });
    const it2 = iter(again);
    for (let i = 0; i < 3; i++) await (await nextOf(it2)).ack();
    await again.close();
    await publishN(env.events, `${stream}.a`, 1);
    const third = await events.subscribe(stream, consumer, { schema: TestEventSchema, closeTimeoutMs: 50 });
    for await (const event of third) {
      await event.ack();
      break;
    }
    expect(logger.lines.filter((line) => line.level === "warn")).toEqual([]);
    await env.settled(stream, consumer, 4);
  });
});

describeEngines("auto-ping: maxAutoPingMs", (env) => {
  it("stops auto-ping once an event was held that long, so the engine redelivers it", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 500 });
    await publishN(env.events, `${stream}.a`, 1);
    const start = env.now();
    await using sub = await events.subscribe(stream, consumer, { schema: TestEventSchema, maxAutoPingMs: 1_200 });
    const it = iter(sub);
    const first = await nextOf(it);
    expect(first.deliveryAttempt).toBe(1);
    // Kept past two processing timeouts by auto-ping…
    const { next } = await expectQuiet(env, it, 1_000);
    // …and let go after maxAutoPingMs: redelivered after one more processing timeout.
    const second = await arrival(env, next, "the redelivery");
    expect([second.id, second.deliveryAttempt]).toEqual([1, 2]);
    expect(env.now() - start).toBeGreaterThanOrEqual(1_200);
    const lines = warnings(logger.lines, PING_STOPPED);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.fields).toMatchObject({ stream, consumer, id: 1, maxAutoPingMs: 1_200 });
    await second.ack();
    await env.settled(stream, consumer, 1);
  });

  it("lets a processor's hung handler's event go to another attempt", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 300 });
    await publishN(env.events, `${stream}.a`, 1);
    const hung = deferred();
    const attempts: number[] = [];
    const processor = await events.process(
      stream,
      consumer,
      handle(TestEventSchema, async (_data, event) => {
        attempts.push(event.deliveryAttempt);
        if (event.deliveryAttempt === 1) await hung.promise;
      }),
      { concurrency: 2, maxAutoPingMs: 600, closeTimeoutMs: 100 },
    );
    await env.eventually(() => attempts.length === 2, { what: "the second attempt" });
    expect(attempts).toEqual([1, 2]);
    await env.settled(stream, consumer, 1);
    expect(warnings(logger.lines, PING_STOPPED)).toHaveLength(1);
    hung.resolve();
    await processor.close();
  });

  it("refuses a bad maxAutoPingMs, and one without auto-ping, with VALIDATION", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    for (const options of [
      { maxAutoPingMs: 0 },
      { maxAutoPingMs: -1 },
      { maxAutoPingMs: 1.5 },
      { maxAutoPingMs: "1000" },
      { maxAutoPingMs: 1_000, autoPing: false },
    ]) {
      for (const err of [
        await windshiftError(env.events.subscribe(stream, consumer, options as never)),
        await windshiftError(env.events.process(stream, consumer, () => {}, options as never)),
      ]) {
        expect(err.code).toBe(ErrorCode.Validation);
        expect(err.message).toContain("maxAutoPingMs");
      }
    }
  });
});
