import { create, createRegistry } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { describe, expect, expectTypeOf, it } from "vitest";
import { OtherEventSchema, type TestEvent, TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, type Event, isWindshiftError, type Subscription, type WindshiftError } from "../src/index.js";
import {
  expectNoEvent,
  holdFor,
  nextEvent,
  pauseProcess,
  resumeProcess,
  streamWithWorker,
  useServer,
  waitFor,
  windshiftError,
} from "./helpers.js";
import { recordingLogger } from "./log.js";

const env = useServer();

interface Setup {
  stream: string;
  consumer: string;
}

function setup(consumer: { processingTimeoutMs?: number; maxDeliveryAttempts?: number } = {}): Promise<Setup> {
  return streamWithWorker(env.events, consumer);
}

async function publishN(stream: string, n: number, subject = "a"): Promise<void> {
  for (let i = 0; i < n; i++) {
    await env.events.publish(`${stream}.${subject}`, TestEventSchema, { text: `e${i}`, number: BigInt(i) });
  }
}

function iter<T extends Event>(sub: Subscription & AsyncIterable<T>): AsyncIterator<T> {
  return sub[Symbol.asyncIterator]() as AsyncIterator<T>;
}

async function ackPending(stream: string, consumer: string): Promise<number> {
  const jsm = await jetstreamManager(env.nc);
  return (await jsm.consumers.info(stream, consumer)).num_ack_pending;
}

describe("subscribe: decoding", () => {
  it("hands out typed events with their metadata", async () => {
    const { stream, consumer } = await setup();
    await env.events.publish(
      `${stream}.x.y`,
      TestEventSchema,
      { text: "hello", tags: ["a"] },
      {
        idempotencyKey: "id-1",
        occurredAt: new Date("2025-01-02T03:04:05.678Z"),
      },
    );
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    expectTypeOf(sub).toEqualTypeOf<Subscription<TestEvent>>();
    const ev = await nextEvent(iter(sub));
    expectTypeOf(ev.data).toEqualTypeOf<TestEvent>();
    expect(ev.id).toBe(1);
    expect(ev.subject).toBe(`${stream}.x.y`);
    expect(ev.stream).toBe(stream);
    expect(ev.consumer).toBe(consumer);
    expect(ev.deliveryAttempt).toBe(1);
    expect(ev.type).toBe("windshift.test.v1.TestEvent");
    expect(ev.headers.occurredAt?.toISOString()).toBe("2025-01-02T03:04:05.678Z");
    expect(ev.headers.idempotencyKey).toBe("id-1");
    expect(ev.data).toEqual(create(TestEventSchema, { text: "hello", tags: ["a"] }));
    expect(ev.payload).toBeInstanceOf(Uint8Array);
    expect(ev.is(TestEventSchema)).toBe(true);
    expect(ev.is(OtherEventSchema)).toBe(false);
    expect(ev.settled).toBe(false);
    await ev.ack();
    expect(ev.settled).toBe(true);
    expect(sub.processingTimeoutMs).toBe(30_000);
  });

  it("decodes several types through a registry", async () => {
    const { stream, consumer } = await setup();
    await env.events.publish(`${stream}.t`, TestEventSchema, { text: "t" });
    await env.events.publish(`${stream}.o`, OtherEventSchema, { name: "o", labels: { k: "v" } });
    const registry = createRegistry(TestEventSchema, OtherEventSchema);
    await using sub = await env.events.subscribe(stream, consumer, { registry });
    const it = iter(sub);
    const a = await nextEvent(it);
    const b = await nextEvent(it);
    expect(a.data).toEqual(create(TestEventSchema, { text: "t" }));
    expect(b.data).toEqual(create(OtherEventSchema, { name: "o", labels: { k: "v" } }));
    if (b.is(OtherEventSchema)) expect(b.decode(OtherEventSchema).labels).toEqual({ k: "v" });
    await a.ack();
    await b.ack();
  });

  it("without schema or registry, data points to decode() and payload", async () => {
    const { stream, consumer } = await setup();
    await publishN(stream, 1);
    await using sub = await env.events.subscribe(stream, consumer);
    const ev = await nextEvent(iter(sub));
    const err = await windshiftError(() => ev.data);
    expect(err.code).toBe(ErrorCode.Validation);
    expect(err.message).toMatch(/decode\(/);
    expect(ev.decode(TestEventSchema).text).toBe("e0");
    await ev.ack();
  });

  it("decode() of another type and an unknown registry type are INVALID_DATA", async () => {
    const { stream, consumer } = await setup();
    await publishN(stream, 1);
    await env.events.publish(`${stream}.o`, OtherEventSchema, { name: "o" });
    await using sub = await env.events.subscribe(stream, consumer, { registry: createRegistry(OtherEventSchema) });
    const it = iter(sub);
    const ev = await nextEvent(it);
    expect((await windshiftError(() => ev.decode(OtherEventSchema))).code).toBe(ErrorCode.InvalidData);
    const unknownType = await windshiftError(() => ev.data);
    expect(unknownType.code).toBe(ErrorCode.InvalidData);
    expect(unknownType.message).toMatch(/registry does not know/);
    await ev.ack();
    const ok = await nextEvent(it);
    expect(ok.data).toEqual(create(OtherEventSchema, { name: "o" }));
    await ok.ack();
  });

  it("surfaces poison events (garbage payload, no type header) without breaking the loop", async () => {
    const { stream, consumer } = await setup({ processingTimeoutMs: 500 });
    await publishN(stream, 1);
    const h = natsHeaders();
    h.set("WS-Data-Type", "windshift.test.v1.TestEvent");
    await env.nc.request(`${stream}.a`, new Uint8Array([0xff, 0xff, 0xff]), { headers: h, timeout: 5_000 });
    await env.nc.request(`${stream}.a`, new Uint8Array([8, 1]));
    await publishN(stream, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const ev = await nextEvent(it);
      try {
        seen.push(ev.data.text);
        await ev.ack();
      } catch (err) {
        expect(isWindshiftError(err, ErrorCode.InvalidData)).toBe(true);
        seen.push(`poison:${ev.id}`);
        await ev.reject({ permanent: true });
      }
    }
    expect(seen).toEqual(["e0", "poison:2", "poison:3", "e0"]);
    // Terminated poison events are never redelivered, even past the processing timeout.
    await expectNoEvent(it, 1_200);
    expect(await ackPending(stream, consumer)).toBe(0);
  });
});

/** One event taken from a subscription of a client whose log is recorded. */
async function oneEventLogged() {
  const logger = recordingLogger();
  const events = await env.client({ logger });
  const { stream, consumer } = await setup();
  await publishN(stream, 1);
  const sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
  return { logger, sub, ev: await nextEvent(iter(sub)), stream, consumer };
}

describe("subscribe: settling", () => {
  it("ack: the event is not redelivered", async () => {
    const { stream, consumer } = await setup({ processingTimeoutMs: 300 });
    await publishN(stream, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    await (await nextEvent(it)).ack();
    await expectNoEvent(it, 900);
    expect(await ackPending(stream, consumer)).toBe(0);
  });

  it("an unsettled event is redelivered after the processing timeout (without auto-ping)", async () => {
    const { stream, consumer } = await setup({ processingTimeoutMs: 300 });
    await publishN(stream, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, autoPing: false });
    const it = iter(sub);
    const first = await nextEvent(it);
    const again = await nextEvent(it, 3_000);
    expect(again.id).toBe(first.id);
    expect(again.deliveryAttempt).toBe(2);
    await again.ack();
  });

  it("reject(): redelivered at once with the next delivery attempt", async () => {
    const { stream, consumer } = await setup();
    await publishN(stream, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const first = await nextEvent(it);
    await first.reject();
    const again = await nextEvent(it, 2_000);
    expect([again.id, again.deliveryAttempt]).toEqual([first.id, 2]);
    await again.ack();
  });

  it("reject({ delayMs }): not redelivered before the delay", async () => {
    const { stream, consumer } = await setup();
    await publishN(stream, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const first = await nextEvent(it);
    const rejectedAt = Date.now();
    await first.reject({ delayMs: 1_000 });
    const again = await nextEvent(it, 5_000);
    expect(Date.now() - rejectedAt).toBeGreaterThanOrEqual(950);
    expect(again.deliveryAttempt).toBe(2);
    await again.ack();
  });

  it("reject({ permanent: true }): never redelivered", async () => {
    const { stream, consumer } = await setup({ processingTimeoutMs: 300 });
    await publishN(stream, 2);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const first = await nextEvent(it);
    await first.reject({ permanent: true });
    const second = await nextEvent(it);
    expect(second.id).toBe(2);
    await second.ack();
    await expectNoEvent(it, 900);
    expect(await ackPending(stream, consumer)).toBe(0);
  });

  it("reject({ decider }): negative terminates, zero redelivers now, positive delays", async () => {
    const { stream, consumer } = await setup({ processingTimeoutMs: 300 });
    await publishN(stream, 3);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const decided: number[] = [];
    const decider = (e: Event): number => {
      decided.push(e.id);
      return e.id === 1 ? -1 : e.id === 2 ? 0 : 800;
    };
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) await (await nextEvent(it)).reject({ decider });
    expect(decided).toEqual([1, 2, 3]);
    const two = await nextEvent(it, 2_000);
    expect([two.id, two.deliveryAttempt]).toEqual([2, 2]);
    await two.ack();
    const three = await nextEvent(it, 3_000);
    expect([three.id, three.deliveryAttempt]).toEqual([3, 2]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(750);
    await three.ack();
    await expectNoEvent(it, 900); // event 1 was terminated
  });

  it("settling twice is ALREADY_SETTLED; ping after settling too", async () => {
    const { stream, consumer } = await setup();
    await publishN(stream, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const ev = await nextEvent(iter(sub));
    await ev.ack();
    expect((await windshiftError(ev.ack())).code).toBe(ErrorCode.AlreadySettled);
    expect((await windshiftError(ev.reject())).code).toBe(ErrorCode.AlreadySettled);
    expect((await windshiftError(ev.ping())).code).toBe(ErrorCode.AlreadySettled);
  });

  it("ping() keeps an event past its processing timeout", async () => {
    const { stream, consumer } = await setup({ processingTimeoutMs: 600 });
    await publishN(stream, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, autoPing: false });
    const it = iter(sub);
    const ev = await nextEvent(it);
    const pending = it.next();
    let redelivered = false;
    void pending.then(() => {
      redelivered = true;
    });
    const until = Date.now() + 1_800;
    while (Date.now() < until) {
      await ev.ping();
      await holdFor(150); // the ping cadence under test
      expect(redelivered).toBe(false);
    }
    await ev.ack();
    await sub.close();
    expect((await pending).done).toBe(true);
  });

  it("auto-ping keeps a slow handler's event from being redelivered", async () => {
    const { stream, consumer } = await setup({ processingTimeoutMs: 600 });
    await publishN(stream, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const ev = await nextEvent(it);
    const { next } = await expectNoEvent(it, 2_000);
    await ev.ack();
    await sub.close();
    expect((await next).done).toBe(true);
  });

  it("auto-ping also keeps events waiting in the buffer from being redelivered behind a slow handler", async () => {
    const { stream, consumer } = await setup({ processingTimeoutMs: 1_000 });
    await publishN(stream, 5);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, prefetch: 5 });
    const it = iter(sub);
    const first = await nextEvent(it);
    await waitFor(async () => (await ackPending(stream, consumer)) === 5, { what: "all five delivered" });
    // Another instance on the same consumer, with its pull waiting: the server
    // would hand it any of the five whose processing timeout runs out.
    await using other = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    // A slow handler: 2.5 processing timeouts pass while four events wait behind it.
    const { next } = await expectNoEvent(iter(other), 2_500);
    void next.catch(() => {});
    await first.ack();
    const attempts: number[] = [];
    for (let i = 0; i < 4; i++) {
      const ev = await nextEvent(it);
      attempts.push(ev.deliveryAttempt);
      await ev.ack();
    }
    expect(attempts).toEqual([1, 1, 1, 1]);
    const jsm = await jetstreamManager(env.nc);
    expect((await jsm.consumers.info(stream, consumer)).num_redelivered).toBe(0);
  });

  it("fire-and-forget acks (confirmAcks: false) settle too", async () => {
    const { stream, consumer } = await setup({ processingTimeoutMs: 300 });
    await publishN(stream, 3);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, confirmAcks: false });
    const it = iter(sub);
    await (await nextEvent(it)).ack();
    await (await nextEvent(it)).reject({ permanent: true });
    const third = await nextEvent(it);
    await third.reject();
    await (await nextEvent(it)).ack();
    await waitFor(async () => (await ackPending(stream, consumer)) === 0, { what: "acks to land" });
    await expectNoEvent(it, 900);
  });

  it("confirms many acks in flight at once (sent together); an aborted one among them stays unsettled", async () => {
    const { stream, consumer } = await setup();
    await publishN(stream, 40);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const taken: Event[] = [];
    for (let i = 0; i < 40; i++) taken.push(await nextEvent(it));
    const aborted = new AbortController();
    aborted.abort();
    const outcomes = await Promise.allSettled(
      taken.map((ev, i) => (i === 20 ? ev.ack({ signal: aborted.signal }) : ev.ack())),
    );
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(39);
    expect((outcomes[20] as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.Aborted });
    expect(taken.filter((ev) => ev.settled)).toHaveLength(39);
    expect(await ackPending(stream, consumer)).toBe(1);
    await (taken[20] as Event).ack();
    expect(await ackPending(stream, consumer)).toBe(0);
  });

  it("retries a settlement while the server is paused, and succeeds once it resumes", async () => {
    const { logger, sub, ev, stream, consumer } = await oneEventLogged();
    await using _ = sub;
    await pauseProcess(env.server.pid);
    let resumed = false;
    try {
      const acking = ev.ack({ timeoutMs: 100 });
      await waitFor(() => logger.lines.some((l) => l.message === "ack failed, retrying"), { what: "a retry" });
      resumeProcess(env.server.pid);
      resumed = true;
      await acking;
    } finally {
      if (!resumed) resumeProcess(env.server.pid);
    }
    expect(ev.settled).toBe(true);
    expect(await ackPending(stream, consumer)).toBe(0);
  });

  it("gives up per the retry options and leaves the event unsettled", async () => {
    const { logger, sub, ev } = await oneEventLogged();
    await using _ = sub;
    await pauseProcess(env.server.pid);
    let err: WindshiftError;
    try {
      err = await windshiftError(ev.ack({ timeoutMs: 50, retry: { maxAttempts: 3, initialDelayMs: 10 } }));
    } finally {
      resumeProcess(env.server.pid);
    }
    expect(err.code).toBe(ErrorCode.Timeout);
    expect(logger.lines.filter((l) => l.message === "ack failed, retrying")).toHaveLength(2);
    expect(ev.settled).toBe(false);
    await ev.ack();
    expect(ev.settled).toBe(true);
  });
});

describe("subscribe: closing", () => {
  it("break closes the subscription and gives back buffered events at once", async () => {
    const { stream, consumer } = await setup(); // 30 s processing timeout
    await publishN(stream, 5);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    await waitFor(async () => (await ackPending(stream, consumer)) === 5, { what: "all five to be delivered" });
    for await (const ev of sub) {
      await ev.ack();
      break;
    }
    await sub.closed;
    // The four buffered events were nak'ed, so a new subscriber gets them now, not in 30 s.
    await using sub2 = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub2);
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) {
      const ev = await nextEvent(it, 3_000);
      ids.push(ev.id);
      await ev.ack();
    }
    expect(ids).toEqual([2, 3, 4, 5]);
  });

  it("an AbortSignal ends the iteration cleanly", async () => {
    const { stream, consumer } = await setup();
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
    await publishN(stream, 2);
    await waitFor(() => seen.length === 2, { what: "two events" });
    controller.abort();
    expect(await loop).toBe("ended");
    await sub.closed;
  });

  it("subscribe with an aborted signal rejects with ABORTED", async () => {
    const { stream, consumer } = await setup();
    const err = await windshiftError(env.events.subscribe(stream, consumer, { signal: AbortSignal.abort() }));
    expect(err.code).toBe(ErrorCode.Aborted);
  });

  it("close() waits for handed-out events to be settled", async () => {
    const { stream, consumer } = await setup({ processingTimeoutMs: 300 });
    await publishN(stream, 1);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const ev = await nextEvent(iter(sub));
    let closed = false;
    const closing = sub.close().then(() => {
      closed = true;
    });
    await holdFor(100); // close must still be waiting for the event
    expect(closed).toBe(false);
    await ev.ack();
    await closing;
    await sub.close(); // idempotent
    await using sub2 = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    await expectNoEvent(iter(sub2), 900);
  });

  it("close() gives back what is still unsettled after closeTimeoutMs, for redelivery at once", async () => {
    const { stream, consumer } = await setup(); // 30 s processing timeout
    await publishN(stream, 1);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, closeTimeoutMs: 100 });
    const ev = await nextEvent(iter(sub));
    await sub.close();
    expect((await windshiftError(ev.ack())).code).toBe(ErrorCode.AlreadySettled);
    await using sub2 = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    // Redelivered at once, not after the 30 s processing timeout.
    const again = await nextEvent(iter(sub2), 3_000);
    expect(again.id).toBe(1);
    await again.ack();
  });

  it("leaving the loop does not wait: an event taken out of it can still be acked", async () => {
    const { stream, consumer } = await setup({ processingTimeoutMs: 300 });
    await publishN(stream, 1);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    let kept: Event<TestEvent> | undefined;
    for await (const ev of sub) {
      kept = ev;
      break;
    }
    await sub.closed;
    await kept?.ack();
    expect(kept?.settled).toBe(true);
    await using sub2 = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    await expectNoEvent(iter(sub2), 900);
  });

  it("a throw inside the loop closes the subscription", async () => {
    const { stream, consumer } = await setup();
    await publishN(stream, 1);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    await expect(
      (async () => {
        for await (const ev of sub) {
          await ev.ack();
          throw new Error("handler failed");
        }
      })(),
    ).rejects.toThrow("handler failed");
    await sub.closed;
  });

  it("a deleted consumer ends the iteration with NOT_FOUND", async () => {
    const { stream, consumer } = await setup();
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const pending = windshiftError(it.next());
    const jsm = await jetstreamManager(env.nc);
    await jsm.consumers.delete(stream, consumer);
    const err = await pending;
    expect(err.code).toBe(ErrorCode.NotFound);
    await sub.closed;
  }, 60_000);

  it("subscribing to a missing consumer is NOT_FOUND", async () => {
    const { stream } = await setup();
    const err = await windshiftError(env.events.subscribe(stream, "nobody"));
    expect(err.code).toBe(ErrorCode.NotFound);
  });
});
