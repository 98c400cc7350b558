import { expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, handle } from "../../src/index.js";
import { describeEngines, nextOf, streamWithWorker, uniqueName } from "./harness.js";

// ensureStream and ensureConsumer declare a whole configuration: an option
// left out of an update falls back to its default, whatever it was before.
describeEngines("ensure: exactly these options", (env) => {
  it("an update without sources removes them all", async () => {
    const source = uniqueName();
    const copy = uniqueName();
    await env.events.ensureStream(source, { subjects: [`${source}.>`] });
    // Where the engine has no sources (PostgreSQL), the stream starts without them.
    if (env.caps.sources) {
      const created = await env.events.ensureStream(copy, { sources: [{ stream: source }] });
      expect(created.config.sources).toEqual([{ stream: source, from: { start: true } }]);
    } else {
      await env.events.ensureStream(copy, { subjects: [`${copy}.old`] });
    }
    const updated = await env.events.ensureStream(copy, { subjects: [`${copy}.>`] });
    expect(updated.config.sources).toBeUndefined();
    expect(updated.config.subjects).toEqual([`${copy}.>`]);
  });

  it("an update without discardNewPerSubject turns it off", async () => {
    const name = uniqueName();
    await env.events.ensureStream(name, {
      subjects: [`${name}.>`],
      discardPolicy: "new",
      maxEventsPerSubject: 2,
      discardNewPerSubject: true,
    });
    const updated = await env.events.ensureStream(name, { subjects: [`${name}.>`] });
    expect(updated.config).toMatchObject({ discardPolicy: "old", discardNewPerSubject: false });
    expect(updated.config.maxEventsPerSubject).toBeUndefined();
  });

  it("an update of a durable without inactiveThresholdMs clears it", async () => {
    const name = uniqueName();
    await env.events.ensureStream(name, { subjects: [`${name}.>`] });
    const created = await env.events.ensureConsumer(name, { name: "d", inactiveThresholdMs: 60_000 });
    expect(created.config.inactiveThresholdMs).toBe(60_000);
    const updated = await env.events.ensureConsumer(name, { name: "d" });
    expect(updated.config.inactiveThresholdMs).toBeUndefined();
  });

  it("an update of a durable without maxDeliveryAttempts makes it unlimited again", async () => {
    const name = uniqueName();
    await env.events.ensureStream(name, { subjects: [`${name}.>`] });
    await env.events.ensureConsumer(name, { name: "d", maxDeliveryAttempts: 3, maxUnsettledEvents: 5 });
    const updated = await env.events.ensureConsumer(name, { name: "d" });
    expect(updated.config.maxDeliveryAttempts).toBeUndefined();
    expect(updated.config.maxUnsettledEvents).toBe(1_000);
  });
});

describeEngines("process: aborted while it starts", (env) => {
  it("an abort right after the call closes the processor: nothing is handled, process() rejects with ABORTED", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "not for this processor" });
    const handled: number[] = [];
    const controller = new AbortController();
    const starting = env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        handled.push(event.id);
      }),
      { signal: controller.signal },
    );
    controller.abort();
    await expect(starting).rejects.toMatchObject({ code: ErrorCode.Aborted });
    // The event is still there for the next reader, delivered for the first time.
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const event = await nextOf(sub[Symbol.asyncIterator]());
    expect([event.id, event.deliveryAttempt]).toEqual([1, 1]);
    await event.ack();
    expect(handled).toEqual([]);
  });

  it("an abort during the dead-letter check rejects too", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const controller = new AbortController();
    const starting = env.events.process(stream, consumer, () => {}, {
      signal: controller.signal,
      deadLetter: { subject: `${stream}.dead` },
    });
    controller.abort();
    await expect(starting).rejects.toMatchObject({ code: ErrorCode.Aborted });
  });
});
