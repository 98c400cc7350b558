import { expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, type Event, type Subscription } from "../../src/index.js";
import { describeEngines, expectQuiet, nextOf, streamWithWorker } from "./harness.js";
import { arrival, publishN, windshiftError } from "./support.js";

function iter<T extends Event>(sub: Subscription & AsyncIterable<T>): AsyncIterator<T> {
  return sub[Symbol.asyncIterator]() as AsyncIterator<T>;
}

describeEngines("settle: ack, reject and ping", (env) => {
  it("ack: the event is not redelivered", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 300 });
    await publishN(env.events, `${stream}.a`, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    await (await nextOf(it)).ack();
    await expectQuiet(env, it, 900);
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: 1, unsettled: 0, pending: 0 });
  });

  it("an unsettled event comes again after each processing timeout, its attempt counted (without auto-ping)", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 600 });
    await publishN(env.events, `${stream}.a`, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, autoPing: false });
    const it = iter(sub);
    const first = await nextOf(it);
    expect([first.id, first.deliveryAttempt]).toEqual([1, 1]);
    // Not before its processing timeout…
    const { next } = await expectQuiet(env, it, 200);
    // …and then again after each one.
    const second = await arrival(env, next, "the second delivery");
    expect([second.id, second.deliveryAttempt]).toEqual([1, 2]);
    const third = await arrival(env, it.next(), "the third delivery");
    expect([third.id, third.deliveryAttempt]).toEqual([1, 3]);
    await third.ack();
    await expectQuiet(env, it, 900);
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: 1, unsettled: 0, pending: 0 });
  });

  it("maxDeliveryAttempts: an event left unsettled is delivered that many times, then no more", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, {
      processingTimeoutMs: 300,
      maxDeliveryAttempts: 3,
    });
    await publishN(env.events, `${stream}.a`, 1);
    await using sub = await env.events.subscribe(stream, consumer, {
      schema: TestEventSchema,
      autoPing: false,
      closeTimeoutMs: 100,
    });
    const it = iter(sub);
    const attempts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const ev = await arrival(env, it.next(), `delivery ${i + 1}`);
      expect(ev.id).toBe(1);
      attempts.push(ev.deliveryAttempt);
    }
    expect(attempts).toEqual([1, 2, 3]);
    await expectQuiet(env, it, 1_200);
    // Given up on, it no longer counts as unsettled. (Where the ack floor ends
    // up differs: nats-server 2.9.10 leaves it below an event given up on.)
    expect(await env.progress(stream, consumer)).toMatchObject({ unsettled: 0, pending: 0 });
  });

  it("maxDeliveryAttempts: an event rejected at its last attempt is not delivered again", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, {
      processingTimeoutMs: 300,
      maxDeliveryAttempts: 2,
    });
    await publishN(env.events, `${stream}.a`, 2);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const seen: [number, number][] = [];
    for (let i = 0; i < 3; i++) {
      const ev = await nextOf(it);
      seen.push([ev.id, ev.deliveryAttempt]);
      if (ev.id === 1) await ev.reject();
      else await ev.ack();
    }
    expect(seen).toEqual([
      [1, 1],
      [2, 1],
      [1, 2],
    ]);
    await expectQuiet(env, it, 900);
    expect(await env.progress(stream, consumer)).toMatchObject({ unsettled: 0, pending: 0 });
  });

  it("reject(): redelivered at once with the next delivery attempt", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishN(env.events, `${stream}.a`, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const first = await nextOf(it);
    await first.reject();
    expect(first.settled).toBe(true);
    // No time passes on the test clock: "at once" means at once.
    const again = await nextOf(it, 2_000);
    expect([again.id, again.deliveryAttempt]).toEqual([first.id, 2]);
    await again.ack();
  });

  it("reject({ delayMs }): not redelivered before the delay, redelivered after it", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishN(env.events, `${stream}.a`, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const first = await nextOf(it);
    await first.reject({ delayMs: 1_000 });
    const { next } = await expectQuiet(env, it, 900);
    const again = await arrival(env, next, "the delayed redelivery");
    expect([again.id, again.deliveryAttempt]).toEqual([1, 2]);
    await again.ack();
  });

  it("reject({ permanent: true }): never redelivered", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 300 });
    await publishN(env.events, `${stream}.a`, 2);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const first = await nextOf(it);
    await first.reject({ permanent: true });
    const second = await nextOf(it);
    expect(second.id).toBe(2);
    await second.ack();
    await expectQuiet(env, it, 900);
    expect(await env.progress(stream, consumer)).toMatchObject({ unsettled: 0, pending: 0 });
  });

  it("reject({ decider }): negative terminates, zero redelivers now, positive delays", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 300 });
    await publishN(env.events, `${stream}.a`, 3);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const decided: number[] = [];
    const decider = (e: Event): number => {
      decided.push(e.id);
      return e.id === 1 ? -1 : e.id === 2 ? 0 : 1_500;
    };
    for (let i = 0; i < 3; i++) await (await nextOf(it)).reject({ decider });
    expect(decided).toEqual([1, 2, 3]);
    const two = await nextOf(it, 2_000);
    expect([two.id, two.deliveryAttempt]).toEqual([2, 2]);
    await two.ack();
    const { next } = await expectQuiet(env, it, 600);
    const three = await arrival(env, next, "event 3 after its delay");
    expect([three.id, three.deliveryAttempt]).toEqual([3, 2]);
    await three.ack();
    await expectQuiet(env, it, 900); // event 1 was terminated
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: 3, unsettled: 0, pending: 0 });
  });

  it("settling twice is ALREADY_SETTLED; ping after settling too", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishN(env.events, `${stream}.a`, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const ev = await nextOf(iter(sub));
    await ev.ack();
    expect((await windshiftError(ev.ack())).code).toBe(ErrorCode.AlreadySettled);
    expect((await windshiftError(ev.reject())).code).toBe(ErrorCode.AlreadySettled);
    expect((await windshiftError(ev.reject({ permanent: true }))).code).toBe(ErrorCode.AlreadySettled);
    expect((await windshiftError(ev.ping())).code).toBe(ErrorCode.AlreadySettled);
    expect(ev.settled).toBe(true);
  });

  it("ping() keeps an event past its processing timeout", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 600 });
    await publishN(env.events, `${stream}.a`, 1);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, autoPing: false });
    const it = iter(sub);
    const ev = await nextOf(it);
    const pending = it.next();
    let redelivered = false;
    void pending.then(() => {
      redelivered = true;
    });
    // Three processing timeouts, a ping every quarter of one.
    for (let elapsed = 0; elapsed < 1_800; elapsed += 150) {
      await ev.ping();
      await env.elapse(150);
      expect(redelivered).toBe(false);
    }
    await ev.ack();
    await sub.close();
    expect((await pending).done).toBe(true);
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: 1, unsettled: 0, pending: 0 });
  });

  it("auto-ping keeps a slow handler's event from being redelivered", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 600 });
    await publishN(env.events, `${stream}.a`, 1);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const ev = await nextOf(it);
    const { next } = await expectQuiet(env, it, 2_000);
    await ev.ack();
    await sub.close();
    expect((await next).done).toBe(true);
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: 1, unsettled: 0, pending: 0 });
  });

  it("auto-ping also keeps events waiting in the buffer from being redelivered behind a slow handler", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 1_000 });
    await publishN(env.events, `${stream}.a`, 5);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, prefetch: 5 });
    const it = iter(sub);
    const first = await nextOf(it);
    await env.eventually(async () => (await env.progress(stream, consumer)).unsettled === 5, {
      what: "all five delivered",
    });
    // Another subscriber on the same consumer, waiting: the engine would hand
    // it any of the five whose processing timeout runs out.
    await using other = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    // A slow handler: 2.5 processing timeouts pass while four events wait behind it.
    const { next } = await expectQuiet(env, iter(other), 2_500);
    void next.catch(() => {});
    await first.ack();
    const seen: [number, number][] = [];
    for (let i = 0; i < 4; i++) {
      const ev = await nextOf(it);
      seen.push([ev.id, ev.deliveryAttempt]);
      await ev.ack();
    }
    expect(seen).toEqual([
      [2, 1],
      [3, 1],
      [4, 1],
      [5, 1],
    ]);
    await env.settled(stream, consumer, 5);
  });

  it("fire-and-forget settlements (confirmAcks: false) settle too", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 300 });
    await publishN(env.events, `${stream}.a`, 3);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, confirmAcks: false });
    const it = iter(sub);
    await (await nextOf(it)).ack();
    await (await nextOf(it)).reject({ permanent: true });
    const third = await nextOf(it);
    await third.reject();
    const again = await nextOf(it);
    expect([again.id, again.deliveryAttempt]).toEqual([3, 2]);
    await again.ack();
    await env.settled(stream, consumer, 3);
    await expectQuiet(env, it, 900);
  });

  it("confirms many acks in flight at once; an aborted one among them stays unsettled", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishN(env.events, `${stream}.a`, 40);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const taken: Event[] = [];
    for (let i = 0; i < 40; i++) taken.push(await nextOf(it));
    const aborted = new AbortController();
    aborted.abort();
    const outcomes = await Promise.allSettled(
      taken.map((ev, i) => (i === 20 ? ev.ack({ signal: aborted.signal }) : ev.ack())),
    );
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(39);
    expect((outcomes[20] as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.Aborted });
    expect(taken.filter((ev) => ev.settled)).toHaveLength(39);
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: 20, unsettled: 1, pending: 0 });
    await (taken[20] as Event).ack();
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: 40, unsettled: 0, pending: 0 });
  });
});

describeEngines("settle: closing, prefetch and competing subscribers", (env) => {
  it("break closes the subscription and gives back buffered events at once", async () => {
    const { stream, consumer } = await streamWithWorker(env.events); // 30 s processing timeout
    await publishN(env.events, `${stream}.a`, 5);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    await env.eventually(async () => (await env.progress(stream, consumer)).unsettled === 5, {
      what: "all five delivered",
    });
    for await (const ev of sub) {
      await ev.ack();
      break;
    }
    expect(await sub.closed).toBeUndefined();
    // The four buffered events were given back: a new subscriber gets them
    // now (no time passes on the test clock), not after 30 s.
    await using sub2 = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub2);
    const seen: [number, number][] = [];
    for (let i = 0; i < 4; i++) {
      const ev = await nextOf(it, 3_000);
      seen.push([ev.id, ev.deliveryAttempt]);
      await ev.ack();
    }
    expect(seen).toEqual([
      [2, 2],
      [3, 2],
      [4, 2],
      [5, 2],
    ]);
  });

  it("close() gives back what is still unsettled after closeTimeoutMs, for redelivery at once", async () => {
    const { stream, consumer } = await streamWithWorker(env.events); // 30 s processing timeout
    await publishN(env.events, `${stream}.a`, 1);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, closeTimeoutMs: 100 });
    const ev = await nextOf(iter(sub));
    await sub.close();
    expect((await windshiftError(ev.ack())).code).toBe(ErrorCode.AlreadySettled);
    await using sub2 = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    // Redelivered at once, not after the 30 s processing timeout.
    const again = await nextOf(iter(sub2), 3_000);
    expect([again.id, again.deliveryAttempt]).toEqual([1, 2]);
    await again.ack();
  });

  it("close() gives back buffered events first and unsettled ones after closeTimeoutMs, each in stream order", async () => {
    const { stream, consumer } = await streamWithWorker(env.events); // 30 s processing timeout
    await publishN(env.events, `${stream}.a`, 5);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, closeTimeoutMs: 100 });
    await env.eventually(async () => (await env.progress(stream, consumer)).unsettled === 5, {
      what: "all five delivered",
    });
    const it = iter(sub);
    const handedOut = [await nextOf(it), await nextOf(it)];
    await sub.close();
    expect(handedOut.map((ev) => ev.settled)).toEqual([true, true]); // taken back
    await using sub2 = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it2 = iter(sub2);
    const seen: [number, number][] = [];
    for (let i = 0; i < 5; i++) {
      const ev = await nextOf(it2, 3_000);
      seen.push([ev.id, ev.deliveryAttempt]);
      await ev.ack();
    }
    expect(seen).toEqual([
      [3, 2],
      [4, 2],
      [5, 2],
      [1, 2],
      [2, 2],
    ]);
    await env.settled(stream, consumer, 5);
  });

  it("fetches at most prefetch ahead of the loop", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishN(env.events, `${stream}.a`, 20);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema, prefetch: 5 });
    await env.eventually(async () => (await env.progress(stream, consumer)).unsettled === 5, {
      what: "5 delivered",
    });
    const it = iter(sub);
    // Nothing more is delivered while the loop takes nothing.
    await env.elapse(300);
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: 0, unsettled: 5, pending: 15 });
    // Taking and acking events makes room for more, never more than 5 ahead.
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) {
      const ev = await nextOf(it);
      ids.push(ev.id);
      await ev.ack();
      expect((await env.progress(stream, consumer)).unsettled).toBeLessThanOrEqual(5);
    }
    expect(ids).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await env.settled(stream, consumer, 20);
  });

  it("two subscribers sharing a durable consumer share its events without double delivery", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const otherClient = await env.client();
    const subs = [
      await env.events.subscribe(stream, consumer, { schema: TestEventSchema, prefetch: 2 }),
      await otherClient.subscribe(stream, consumer, { schema: TestEventSchema, prefetch: 2 }),
    ];
    const received: Event[][] = [[], []];
    const loops = subs.map(async (sub, i) => {
      for await (const ev of sub) {
        received[i]?.push(ev);
        await ev.ack();
      }
    });
    await publishN(env.events, `${stream}.a`, 30);
    await env.settled(stream, consumer, 30);
    await Promise.all(subs.map((sub) => sub.close()));
    await Promise.all(loops);
    await otherClient.close();
    const all = received.flat();
    expect(all.map((ev) => ev.id).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(all.every((ev) => ev.deliveryAttempt === 1)).toBe(true);
    // Both took part.
    expect(received.map((r) => r.length > 0)).toEqual([true, true]);
  });
});
