import { expect, it } from "vitest";
import { type TestEvent, TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { type ConsumerStart, ErrorCode, type Event, isValidName, isWindshiftError } from "../../src/index.js";
import { describeEngines, type EngineEnv, expectQuiet, nextOf, uniqueName } from "./harness.js";
import { windshiftError } from "./support.js";

/** A new stream capturing `${name}.>`. */
async function newStream(env: EngineEnv): Promise<string> {
  const s = uniqueName();
  await env.events.ensureStream(s, { subjects: [`${s}.>`] });
  return s;
}

/** Publishes one event per subject suffix, its text the suffix; returns their ids. */
async function publish(env: EngineEnv, stream: string, ...suffixes: string[]): Promise<number[]> {
  const ids: number[] = [];
  for (const suffix of suffixes) {
    ids.push((await env.events.publish(`${stream}.${suffix}`, TestEventSchema, { text: suffix })).id);
  }
  return ids;
}

/**
 * Subscribes, takes `n` events (acking each), closes, and checks with the
 * engine that each came for the first time and nothing is left.
 */
async function receive(env: EngineEnv, stream: string, consumer: string, n: number): Promise<number[]> {
  const ids: number[] = [];
  {
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    for (let i = 0; i < n; i++) {
      const event = await nextOf(it);
      expect(event.data.text).toBe(event.subject.slice(stream.length + 1));
      expect(event.deliveryAttempt, `delivery attempt of event ${event.id}`).toBe(1);
      ids.push(event.id);
      await event.ack();
    }
  }
  const progress = await env.progress(stream, consumer);
  expect(progress.pending, "events left undelivered").toBe(0);
  expect(progress.unsettled, "events delivered but not acked").toBe(0);
  return ids;
}

describeEngines("ensureConsumer: durable and ephemeral", (env) => {
  it("a durable consumer gets its name, the defaults, and no inactive threshold", async () => {
    const s = await newStream(env);
    const result = await env.events.ensureConsumer(s, { name: "worker" });
    expect(result).toEqual({
      name: "worker",
      stream: s,
      durable: true,
      created: true,
      config: { subjects: [], from: { end: true }, processingTimeoutMs: 30_000, maxUnsettledEvents: 1_000 },
    });
  });

  it("an ephemeral consumer gets a generated name and a 1 h inactive threshold; each is another consumer", async () => {
    const s = await newStream(env);
    const result = await env.events.ensureConsumer(s);
    expect(result.durable).toBe(false);
    expect(result.created).toBe(true);
    expect(result.stream).toBe(s);
    expect(isValidName(result.name)).toBe(true);
    expect(result.config).toEqual({
      subjects: [],
      from: { end: true },
      processingTimeoutMs: 30_000,
      maxUnsettledEvents: 1_000,
      inactiveThresholdMs: 3_600_000,
    });
    const other = await env.events.ensureConsumer(s);
    expect(other.name).not.toBe(result.name);
    // Two consumers, each with its own position.
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "a" });
    expect(await receive(env, s, result.name, 1)).toEqual([1]);
    expect(await env.progress(s, other.name)).toMatchObject({ pending: 1, unsettled: 0 });
  });

  it("an ephemeral consumer delivers to a subscriber by its generated name", async () => {
    const s = await newStream(env);
    const consumer = await env.events.ensureConsumer(s, { from: { start: true } });
    await publish(env, s, "a", "b");
    expect(await receive(env, s, consumer.name, 2)).toEqual([1, 2]);
  });

  it("an ephemeral consumer's inactiveThresholdMs is kept", async () => {
    const s = await newStream(env);
    const result = await env.events.ensureConsumer(s, { inactiveThresholdMs: 90_000 });
    expect(result.config.inactiveThresholdMs).toBe(90_000);
  });

  it("an ephemeral consumer without a subscriber is removed after inactiveThresholdMs", async () => {
    const s = await newStream(env);
    // Inactivity counts from the consumer's creation, its last use.
    const start = env.now();
    const consumer = await env.events.ensureConsumer(s, { from: { start: true }, inactiveThresholdMs: 500 });
    await publish(env, s, "a");
    expect((await env.progress(s, consumer.name)).pending).toBe(1);
    await env.eventually(
      async () => {
        const gone = await env.progress(s, consumer.name).then(
          () => false,
          (err: unknown) => isWindshiftError(err, ErrorCode.NotFound),
        );
        return gone;
      },
      { what: "the idle consumer to be removed" },
    );
    expect(env.now() - start).toBeGreaterThanOrEqual(500);
    const err = await windshiftError(env.events.subscribe(s, consumer.name, { schema: TestEventSchema }));
    expect(err.code).toBe(ErrorCode.NotFound);
  });

  it("an ephemeral consumer with a subscriber stays past its inactiveThresholdMs", async () => {
    const s = await newStream(env);
    const consumer = await env.events.ensureConsumer(s, { inactiveThresholdMs: 500 });
    await using sub = await env.events.subscribe(s, consumer.name, { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    await expectQuiet(env, it, 1_500).then(async ({ next }) => {
      await publish(env, s, "a");
      const arrived = await next;
      expect(arrived.done).toBe(false);
      expect(arrived.value?.id).toBe(1);
      await arrived.value?.ack();
    });
    expect(await env.progress(s, consumer.name)).toMatchObject({ ackFloor: 1, pending: 0 });
  });

  it("is idempotent for a durable consumer: created, then not, and the same consumer", async () => {
    const s = await newStream(env);
    const first = await env.events.ensureConsumer(s, { name: "again", processingTimeoutMs: 12_000 });
    await publish(env, s, "a");
    const second = await env.events.ensureConsumer(s, { name: "again", processingTimeoutMs: 12_000 });
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.name).toBe("again");
    expect(second.config).toEqual(first.config);
    expect(await receive(env, s, "again", 1)).toEqual([1]);
  });
});

describeEngines("ensureConsumer: options", (env) => {
  it("echoes every option back as given", async () => {
    const s = await newStream(env);
    const result = await env.events.ensureConsumer(s, {
      name: "tuned",
      subjects: [`${s}.orders.*`],
      from: { start: true },
      processingTimeoutMs: 7_000,
      maxDeliveryAttempts: 4,
      maxUnsettledEvents: 20,
      inactiveThresholdMs: 600_000,
    });
    expect(result.config).toEqual({
      subjects: [`${s}.orders.*`],
      from: { start: true },
      processingTimeoutMs: 7_000,
      maxDeliveryAttempts: 4,
      maxUnsettledEvents: 20,
      inactiveThresholdMs: 600_000,
    });
  });

  it("subscribe reports the consumer's processing timeout", async () => {
    const s = await newStream(env);
    await env.events.ensureConsumer(s, { name: "slow", processingTimeoutMs: 45_000 });
    await using sub = await env.events.subscribe(s, "slow", { schema: TestEventSchema });
    expect(sub.processingTimeoutMs).toBe(45_000);
  });
});

describeEngines("ensureConsumer: from", (env) => {
  it("{ start: true } delivers every stored event, then new ones", async () => {
    const s = await newStream(env);
    await publish(env, s, "a", "b", "c");
    const c = await env.events.ensureConsumer(s, { name: "c", from: { start: true } });
    expect(c.config.from).toEqual({ start: true });
    await publish(env, s, "d", "e");
    expect(await receive(env, s, "c", 5)).toEqual([1, 2, 3, 4, 5]);
  });

  it("{ end: true } delivers only events published after the consumer was created", async () => {
    const s = await newStream(env);
    await publish(env, s, "a", "b", "c");
    const c = await env.events.ensureConsumer(s, { name: "c", from: { end: true } });
    expect(c.config.from).toEqual({ end: true });
    await publish(env, s, "d", "e");
    expect(await receive(env, s, "c", 2)).toEqual([4, 5]);
  });

  it("the default is { end: true }", async () => {
    const s = await newStream(env);
    await publish(env, s, "a", "b");
    await env.events.ensureConsumer(s, { name: "c" });
    await publish(env, s, "c");
    expect(await receive(env, s, "c", 1)).toEqual([3]);
  });

  it("{ id } delivers from that id, inclusive", async () => {
    const s = await newStream(env);
    await publish(env, s, "a", "b", "c");
    const c = await env.events.ensureConsumer(s, { name: "c", from: { id: 2 } });
    expect(c.config.from).toEqual({ id: 2 });
    await publish(env, s, "d");
    expect(await receive(env, s, "c", 3)).toEqual([2, 3, 4]);
  });

  it("{ id } beyond the last event starts at the next event stored, as JetStream does", async () => {
    // nats-server lowers a start beyond the stream's end to the next id it will assign.
    const s = await newStream(env);
    await publish(env, s, "a");
    await env.events.ensureConsumer(s, { name: "c", from: { id: 3 } });
    await publish(env, s, "b", "c", "d");
    await using sub = await env.events.subscribe(s, "c", { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    const first = await nextOf(it);
    await first.ack();
    const second = await nextOf(it);
    await second.ack();
    expect([first.id, second.id]).toEqual([2, 3]);
  });

  it("{ time } delivers events stored at or after that time", async () => {
    const s = await newStream(env);
    await publish(env, s, "a", "b");
    await env.elapse(25);
    const cutoff = new Date(env.now());
    await env.elapse(25);
    await publish(env, s, "c", "d");
    const c = await env.events.ensureConsumer(s, { name: "c", from: { time: cutoff } });
    expect(c.config.from).toEqual({ time: cutoff });
    await publish(env, s, "e");
    expect(await receive(env, s, "c", 3)).toEqual([3, 4, 5]);
  });

  it.each<[string, ConsumerStart, number[]]>([
    ["start", { start: true }, [1, 2, 3]],
    ["end", { end: true }, [3]],
    ["id", { id: 2 }, [2, 3]],
  ])("an ephemeral consumer honours from %s", async (_, from, expected) => {
    const s = await newStream(env);
    await publish(env, s, "a", "b");
    const c = await env.events.ensureConsumer(s, { from });
    await publish(env, s, "c");
    expect(await receive(env, s, c.name, expected.length)).toEqual(expected);
  });
});

describeEngines("ensureConsumer: subjects", (env) => {
  it.each([
    ["a star in the middle", "*.created", ["orders.created", "users.created"]],
    ["a star at the end", "orders.*", ["orders.created", "orders.paid"]],
    ["a gt at the end", "orders.>", ["orders.created", "orders.paid", "orders.item.added"]],
    ["no wildcard", "orders.paid", ["orders.paid"]],
  ])("filters with %s", async (_, filter, expected) => {
    const s = await newStream(env);
    const all = ["orders.created", "users.created", "orders.paid", "orders.item.added", "users.deleted"];
    const ids = await publish(env, s, ...all);
    const c = await env.events.ensureConsumer(s, { name: "f", subjects: [`${s}.${filter}`], from: { start: true } });
    expect(c.config.subjects).toEqual([`${s}.${filter}`]);
    const want = all.flatMap((subject, i) => (expected.includes(subject) ? [ids[i]] : []));
    expect(await receive(env, s, "f", want.length)).toEqual(want);
    // Later events go through the same filter.
    const late = ["users.deleted", "orders.created", "users.created"];
    const lateIds = await publish(env, s, ...late);
    const lateWant = late.flatMap((subject, i) => (expected.includes(subject) ? [lateIds[i]] : []));
    expect(await receive(env, s, "f", lateWant.length)).toEqual(lateWant);
  });

  it("a filter the stream can never deliver is refused", async () => {
    const s = await newStream(env);
    const err = await windshiftError(env.events.ensureConsumer(s, { name: "f", subjects: [`${uniqueName()}.>`] }));
    expect(err.code).toBe(ErrorCode.Server);
  });
});

describeEngines("ensureConsumer: limits", (env) => {
  it("maxDeliveryAttempts stops redelivering a rejected event after that many attempts", async () => {
    const s = await newStream(env);
    const c = await env.events.ensureConsumer(s, { name: "md", maxDeliveryAttempts: 3 });
    expect(c.config.maxDeliveryAttempts).toBe(3);
    await using sub = await env.events.subscribe(s, "md", { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    await publish(env, s, "a");
    for (let attempt = 1; attempt <= 3; attempt++) {
      const event = await nextOf(it);
      expect(event.id).toBe(1);
      expect(event.deliveryAttempt).toBe(attempt);
      await event.reject();
    }
    const { next } = await expectQuiet(env, it, 300);
    // The next event is delivered as usual.
    await publish(env, s, "b");
    const after = await next;
    expect([after.value?.id, after.value?.deliveryAttempt]).toEqual([2, 1]);
    await after.value?.ack();
  });

  it("maxUnsettledEvents caps unsettled deliveries", async () => {
    const s = await newStream(env);
    const c = await env.events.ensureConsumer(s, { name: "mp", maxUnsettledEvents: 2, from: { start: true } });
    expect(c.config.maxUnsettledEvents).toBe(2);
    await publish(env, s, "a", "b", "c");
    await using sub = await env.events.subscribe(s, "mp", { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    const first = await nextOf(it);
    const second = await nextOf(it);
    expect([first.id, second.id]).toEqual([1, 2]);
    const { next: pending } = await expectQuiet(env, it, 300);
    expect(await env.progress(s, "mp")).toMatchObject({ unsettled: 2, pending: 1 });
    await first.ack();
    const third = await pending;
    expect(third.done).toBe(false);
    expect(third.value?.id).toBe(3);
    await second.ack();
    await third.value?.ack();
  });

  it("maxUnsettledEvents is shared by every subscriber of the consumer", async () => {
    const s = await newStream(env);
    await env.events.ensureConsumer(s, { name: "shared", maxUnsettledEvents: 2, from: { start: true } });
    await publish(env, s, "a", "b", "c", "d");
    const other = await env.client();
    await using one = await env.events.subscribe(s, "shared", { schema: TestEventSchema });
    await using two = await other.subscribe(s, "shared", { schema: TestEventSchema });
    const got: Event<TestEvent>[] = [];
    for (const sub of [one, two]) {
      void (async () => {
        for await (const event of sub) got.push(event);
      })();
    }
    await env.eventually(() => got.length >= 2, { what: "two deliveries" });
    // Neither subscriber gets a third while two are unsettled.
    await env.elapse(300);
    expect(got.map((e) => e.id).sort()).toEqual([1, 2]);
    expect(await env.progress(s, "shared")).toMatchObject({ unsettled: 2, pending: 2 });
    for (const event of got.slice(0, 2)) await event.ack();
    await env.eventually(() => got.length >= 4, { what: "the other two" });
    expect(got.map((e) => e.id).sort()).toEqual([1, 2, 3, 4]);
    for (const event of got.slice(2)) await event.ack();
    await env.settled(s, "shared", 4);
  });
});

describeEngines("ensureConsumer: update", (env) => {
  it("an update of a durable keeps its position and its start, and changes processingTimeoutMs", async () => {
    const s = await newStream(env);
    await env.events.ensureConsumer(s, { name: "u", from: { start: true } });
    await publish(env, s, "a", "b", "c");
    {
      await using sub = await env.events.subscribe(s, "u", { schema: TestEventSchema, prefetch: 1 });
      const it = sub[Symbol.asyncIterator]();
      for (const id of [1, 2]) {
        const event = await nextOf(it);
        expect(event.id).toBe(id);
        await event.ack();
      }
    }
    await env.eventually(async () => (await env.progress(s, "u")).ackFloor === 2, { what: "ack floor 2" });
    // `from` is ignored for an existing consumer: it keeps its position.
    const updated = await env.events.ensureConsumer(s, { name: "u", from: { end: true }, processingTimeoutMs: 5_000 });
    expect(updated.created).toBe(false);
    expect(updated.config.processingTimeoutMs).toBe(5_000);
    expect(updated.config.from).toEqual({ start: true });
    expect((await env.progress(s, "u")).ackFloor).toBe(2);
    await using sub = await env.events.subscribe(s, "u", { schema: TestEventSchema });
    expect(sub.processingTimeoutMs).toBe(5_000);
    const next = await nextOf(sub[Symbol.asyncIterator]());
    expect(next.id).toBe(3);
    await next.ack();
  });
});

describeEngines("ensureConsumer and subscribe: missing things", (env) => {
  it("ensureConsumer on a missing stream fails with NOT_FOUND", async () => {
    const s = uniqueName("missing");
    const durable = await windshiftError(env.events.ensureConsumer(s, { name: "c" }));
    expect(durable.code).toBe(ErrorCode.NotFound);
    const ephemeral = await windshiftError(env.events.ensureConsumer(s));
    expect(ephemeral.code).toBe(ErrorCode.NotFound);
  });

  it("subscribe to a missing consumer fails with NOT_FOUND", async () => {
    const s = await newStream(env);
    const err = await windshiftError(env.events.subscribe(s, "nobody", { schema: TestEventSchema }));
    expect(err.code).toBe(ErrorCode.NotFound);
  });

  it("subscribe on a missing stream fails with NOT_FOUND", async () => {
    const err = await windshiftError(env.events.subscribe(uniqueName("missing"), "nobody"));
    expect(err.code).toBe(ErrorCode.NotFound);
  });

  it("ensureConsumer with an already-aborted signal rejects with ABORTED and creates nothing", async () => {
    const s = await newStream(env);
    const ac = new AbortController();
    ac.abort();
    const err = await windshiftError(env.events.ensureConsumer(s, { name: "c", signal: ac.signal }));
    expect(err.code).toBe(ErrorCode.Aborted);
    const missing = await windshiftError(env.progress(s, "c"));
    expect(missing.code).toBe(ErrorCode.NotFound);
  });
});
