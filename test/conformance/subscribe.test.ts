import { create, createRegistry } from "@bufbuild/protobuf";
import { expect, expectTypeOf, it } from "vitest";
import { OtherEventSchema, type TestEvent, TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import {
  ErrorCode,
  type Event,
  isWindshiftError,
  type Subscription,
  type SubscriptionStatus,
} from "../../src/index.js";
import { describeEngines, expectQuiet, nextOf, streamWithWorker } from "./harness.js";
import { publishN, windshiftError } from "./support.js";

function iter<T extends Event>(sub: Subscription & AsyncIterable<T>): AsyncIterator<T> {
  return sub[Symbol.asyncIterator]() as AsyncIterator<T>;
}

describeEngines("subscribe: decoding", (env) => {
  it("hands out typed events with their metadata", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await env.events.publish(
      `${stream}.x.y`,
      TestEventSchema,
      { text: "hello", tags: ["a"] },
      { idempotencyKey: "id-1", occurredAt: new Date("2025-01-02T03:04:05.678Z") },
    );
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    expectTypeOf(sub).toEqualTypeOf<Subscription<TestEvent>>();
    expect([sub.stream, sub.consumer, sub.processingTimeoutMs]).toEqual([stream, consumer, 30_000]);
    const ev = await nextOf(iter(sub));
    expectTypeOf(ev.data).toEqualTypeOf<TestEvent>();
    expect(ev.id).toBe(1);
    expect(ev.subject).toBe(`${stream}.x.y`);
    expect(ev.stream).toBe(stream);
    expect(ev.consumer).toBe(consumer);
    expect(ev.deliveryAttempt).toBe(1);
    expect(ev.type).toBe("windshift.test.v1.TestEvent");
    expect(ev.headers.occurredAt?.toISOString()).toBe("2025-01-02T03:04:05.678Z");
    expect(ev.headers.idempotencyKey).toBe("id-1");
    expect(ev.headers.get("ws-data-type")).toBe("windshift.test.v1.TestEvent");
    expect(ev.data).toEqual(create(TestEventSchema, { text: "hello", tags: ["a"] }));
    expect(ev.payload).toBeInstanceOf(Uint8Array);
    expect(ev.is(TestEventSchema)).toBe(true);
    expect(ev.is(OtherEventSchema)).toBe(false);
    expect(ev.settled).toBe(false);
    await ev.ack();
    expect(ev.settled).toBe(true);
  });

  it("decodes several types through a registry", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await env.events.publish(`${stream}.t`, TestEventSchema, { text: "t" });
    await env.events.publish(`${stream}.o`, OtherEventSchema, { name: "o", labels: { k: "v" } });
    const registry = createRegistry(TestEventSchema, OtherEventSchema);
    await using sub = await env.events.subscribe(stream, consumer, { registry });
    const it = iter(sub);
    const a = await nextOf(it);
    const b = await nextOf(it);
    expect(a.data).toEqual(create(TestEventSchema, { text: "t" }));
    expect(b.data).toEqual(create(OtherEventSchema, { name: "o", labels: { k: "v" } }));
    expect(b.is(OtherEventSchema)).toBe(true);
    expect(b.decode(OtherEventSchema).labels).toEqual({ k: "v" });
    await a.ack();
    await b.ack();
  });

  it("without schema or registry, data points to decode() and payload", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishN(env.events, `${stream}.a`, 1);
    await using sub = await env.events.subscribe(stream, consumer);
    const ev = await nextOf(iter(sub));
    const err = await windshiftError(() => ev.data);
    expect(err.code).toBe(ErrorCode.Validation);
    expect(err.message).toMatch(/decode\(/);
    expect(ev.decode(TestEventSchema).text).toBe("e0");
    await ev.ack();
  });

  it("decode() of another type and an unknown registry type are INVALID_DATA", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishN(env.events, `${stream}.a`, 1);
    await env.events.publish(`${stream}.o`, OtherEventSchema, { name: "o" });
    await using sub = await env.events.subscribe(stream, consumer, { registry: createRegistry(OtherEventSchema) });
    const it = iter(sub);
    const ev = await nextOf(it);
    expect((await windshiftError(() => ev.decode(OtherEventSchema))).code).toBe(ErrorCode.InvalidData);
    const unknownType = await windshiftError(() => ev.data);
    expect(unknownType.code).toBe(ErrorCode.InvalidData);
    expect(unknownType.message).toMatch(/registry does not know/);
    await ev.ack();
    const ok = await nextOf(it);
    expect(ok.data).toEqual(create(OtherEventSchema, { name: "o" }));
    await ok.ack();
  });

  it("surfaces an event of another type as INVALID_DATA without breaking the loop; rejected permanently, it never comes back", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 500 });
    await publishN(env.events, `${stream}.a`, 1);
    await env.events.publish(`${stream}.a`, OtherEventSchema, { name: "not a TestEvent" });
    await publishN(env.events, `${stream}.a`, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const ev = await nextOf(it);
      try {
        seen.push(ev.data.text);
        await ev.ack();
      } catch (err) {
        expect(isWindshiftError(err, ErrorCode.InvalidData)).toBe(true);
        seen.push(`poison:${ev.id}`);
        await ev.reject({ permanent: true });
      }
    }
    expect(seen).toEqual(["e0", "poison:2", "e0"]);
    // Terminated, the poison event is not redelivered, even past the processing timeout.
    await expectQuiet(env, it, 1_200);
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: 3, unsettled: 0, pending: 0 });
  });
});

describeEngines("subscribe: iteration and closing", (env) => {
  it("an AbortSignal ends the iteration cleanly", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const controller = new AbortController();
    const sub = await env.events.subscribe(stream, consumer, { signal: controller.signal });
    const seen: number[] = [];
    const loop = (async () => {
      for await (const ev of sub) {
        seen.push(ev.id);
        await ev.ack();
      }
      return "ended";
    })();
    await publishN(env.events, `${stream}.a`, 2);
    await env.eventually(() => seen.length === 2, { what: "two events" });
    controller.abort();
    expect(await loop).toBe("ended");
    expect(await sub.closed).toBeUndefined();
    expect(seen).toEqual([1, 2]);
  });

  it("subscribe with an aborted signal rejects with ABORTED", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const err = await windshiftError(env.events.subscribe(stream, consumer, { signal: AbortSignal.abort() }));
    expect(err.code).toBe(ErrorCode.Aborted);
  });

  it("close() waits for handed-out events to be settled", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 300 });
    await publishN(env.events, `${stream}.a`, 1);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const ev = await nextOf(iter(sub));
    let closed = false;
    const closing = sub.close().then(() => {
      closed = true;
    });
    await env.elapse(100);
    expect(closed).toBe(false); // still waiting for the event
    await ev.ack();
    await closing;
    expect(await sub.closed).toBeUndefined();
    await sub.close(); // idempotent
    await using sub2 = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    await expectQuiet(env, iter(sub2), 900);
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: 1, unsettled: 0, pending: 0 });
  });

  it("leaving the loop does not wait: an event taken out of it can still be acked", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 300 });
    await publishN(env.events, `${stream}.a`, 1);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    let kept: Event<TestEvent> | undefined;
    for await (const ev of sub) {
      kept = ev;
      break;
    }
    expect(await sub.closed).toBeUndefined();
    expect(kept?.settled).toBe(false);
    await kept?.ack();
    expect(kept?.settled).toBe(true);
    await using sub2 = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    await expectQuiet(env, iter(sub2), 900);
  });

  it("a throw inside the loop closes the subscription", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishN(env.events, `${stream}.a`, 1);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    await expect(
      (async () => {
        for await (const ev of sub) {
          await ev.ack();
          throw new Error("handler failed");
        }
      })(),
    ).rejects.toThrow("handler failed");
    expect(await sub.closed).toBeUndefined();
  });

  it("subscribing to a missing consumer is NOT_FOUND", async () => {
    const { stream } = await streamWithWorker(env.events);
    const err = await windshiftError(env.events.subscribe(stream, "nobody"));
    expect(err.code).toBe(ErrorCode.NotFound);
  });

  it("a status iterator ends with the subscription", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const sub = await env.events.subscribe(stream, consumer);
    const statuses: SubscriptionStatus[] = [];
    const done = (async () => {
      for await (const s of sub.status()) statuses.push(s);
    })();
    await sub.close();
    await done;
    expect(statuses).toEqual([{ type: "closed" }]);
  });
});
