import { create } from "@bufbuild/protobuf";
import { expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, type PublishedEvent, WindshiftError } from "../../src/index.js";
import { recordingLogger } from "../log.js";
import { describeEngines, type EngineEnv, nextOf, uniqueName } from "./harness.js";
import { storedEvents, until, windshiftError } from "./support.js";

async function newStream(env: EngineEnv, options: { deduplicationWindowMs?: number } = {}): Promise<string> {
  const stream = uniqueName();
  await env.events.ensureStream(stream, { subjects: [`${stream}.>`], ...options });
  return stream;
}

describeEngines("publish", (env) => {
  it("publishes and consumes (smoke)", async () => {
    const stream = uniqueName();
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    const consumer = await env.events.ensureConsumer(stream, { name: "c1", from: { start: true } });
    const p = await env.events.publish(`${stream}.a`, TestEventSchema, { text: "hi", number: 5n });
    expect(p).toEqual({ id: 1, stream, duplicate: false });
    await using sub = await env.events.subscribe(stream, consumer.name, { schema: TestEventSchema });
    const ev = await nextOf(sub[Symbol.asyncIterator]());
    expect(ev.data).toEqual(create(TestEventSchema, { text: "hi", number: 5n }));
    await ev.ack();
  });

  it("stores the event and returns its stream sequence as id", async () => {
    const stream = await newStream(env);
    const a = await env.events.publish(`${stream}.a`, TestEventSchema, { text: "one" });
    const b = await env.events.publish(`${stream}.b`, TestEventSchema, create(TestEventSchema, { text: "two" }));
    expect(a).toEqual({ id: 1, stream, duplicate: false });
    expect(b).toEqual({ id: 2, stream, duplicate: false });
    expect(
      (await storedEvents(env, stream, { schema: TestEventSchema })).map((e) => [e.id, e.subject, e.data.text]),
    ).toEqual([
      [1, `${stream}.a`, "one"],
      [2, `${stream}.b`, "two"],
    ]);
  });

  it("delivers the type, occurredAt and idempotency key it was published with", async () => {
    const stream = await newStream(env);
    const occurredAt = new Date("2024-05-06T07:08:09.123Z");
    await env.events.publish(
      `${stream}.a`,
      TestEventSchema,
      { text: "x", number: 7n },
      { idempotencyKey: "key-1", occurredAt },
    );
    const [event] = await storedEvents(env, stream, { schema: TestEventSchema });
    expect(event?.type).toBe("windshift.test.v1.TestEvent");
    expect(event?.headers.occurredAt).toEqual(occurredAt);
    expect(event?.headers.idempotencyKey).toBe("key-1");
    expect(event?.data.number).toBe(7n);
  });

  it("delivers the same headers on every engine, the checks it was published with among them", async () => {
    const stream = await newStream(env);
    await env.events.publish(
      `${stream}.a`,
      TestEventSchema,
      { text: "x" },
      {
        idempotencyKey: "key-2",
        expectedLastId: 0,
        expectedLastSubjectId: 0,
        headers: { "x-tenant": "acme" },
      },
    );
    const [event] = await storedEvents(env, stream, { schema: TestEventSchema });
    expect(
      [
        "WS-Data-Type",
        "Nats-Msg-Id",
        "Nats-Expected-Last-Sequence",
        "Nats-Expected-Last-Subject-Sequence",
        "x-tenant",
      ].map((name) => event?.headers.get(name)),
    ).toEqual(["windshift.test.v1.TestEvent", "key-2", "0", "0", "acme"]);
    expect(event?.headers.get("WS-Published-Time")).toMatch(/^\d{4}-\d{2}-\d{2}T/);
  });

  it("stamps the current time when occurredAt is not given", async () => {
    const stream = await newStream(env);
    const before = env.now();
    await env.events.publish(`${stream}.a`, TestEventSchema, {});
    const after = env.now();
    const [event] = await storedEvents(env, stream, { schema: TestEventSchema });
    const t = event?.headers.occurredAt?.getTime();
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(after);
  });

  it("deduplicates by idempotency key within the window", async () => {
    const stream = await newStream(env);
    const first = await env.events.publish(`${stream}.a`, TestEventSchema, { text: "1" }, { idempotencyKey: "k" });
    const again = await env.events.publish(`${stream}.a`, TestEventSchema, { text: "2" }, { idempotencyKey: "k" });
    const other = await env.events.publish(`${stream}.a`, TestEventSchema, { text: "3" }, { idempotencyKey: "k2" });
    expect(first).toEqual({ id: 1, stream, duplicate: false });
    expect(again).toEqual({ id: 1, stream, duplicate: true });
    expect(other).toEqual({ id: 2, stream, duplicate: false });
    expect((await storedEvents(env, stream, { schema: TestEventSchema })).map((e) => e.data.text)).toEqual(["1", "3"]);
  });

  it("pipelines many publishes and resolves each with its own id", async () => {
    const stream = await newStream(env);
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        env.events.publish(`${stream}.${i % 7}`, TestEventSchema, { number: BigInt(i) }),
      ),
    );
    const ids = results.map((r) => r.id).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
  });

  it("fails with UNBOUND_SUBJECT when no stream captures the subject", async () => {
    const err = await windshiftError(env.events.publish(`${uniqueName("nowhere")}.a`, TestEventSchema, {}));
    expect(err.code).toBe(ErrorCode.UnboundSubject);
  });

  it("reports a refusal by the stream as a SERVER error with the reason", async () => {
    const stream = uniqueName();
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`], maxEvents: 1, discardPolicy: "new" });
    await env.events.publish(`${stream}.a`, TestEventSchema, {});
    const err = await windshiftError(env.events.publish(`${stream}.a`, TestEventSchema, {}));
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toMatch(/maximum messages/i);
  });
});

describeEngines("publish: optimistic concurrency", (env) => {
  it("checks expectedLastId", async () => {
    const stream = await newStream(env);
    const a = await env.events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastId: 0 });
    expect(a.id).toBe(1);
    const b = await env.events.publish(`${stream}.b`, TestEventSchema, {}, { expectedLastId: 1 });
    expect(b.id).toBe(2);
    const err = await windshiftError(env.events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastId: 1 }));
    expect(err.code).toBe(ErrorCode.WrongSequence);
    expect(err).toBeInstanceOf(WindshiftError);
    expect((await storedEvents(env, stream, { schema: TestEventSchema })).map((e) => e.id)).toEqual([1, 2]);
  });

  it("checks expectedLastSubjectId per subject", async () => {
    const stream = await newStream(env);
    const a1 = await env.events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastSubjectId: 0 });
    const b1 = await env.events.publish(`${stream}.b`, TestEventSchema, {}, { expectedLastSubjectId: 0 });
    const a2 = await env.events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastSubjectId: a1.id });
    expect([a1.id, b1.id, a2.id]).toEqual([1, 2, 3]);
    const err = await windshiftError(
      env.events.publish(`${stream}.b`, TestEventSchema, {}, { expectedLastSubjectId: a2.id }),
    );
    expect(err.code).toBe(ErrorCode.WrongSequence);
    const stale = await windshiftError(
      env.events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastSubjectId: a1.id }),
    );
    expect(stale.code).toBe(ErrorCode.WrongSequence);
    expect((await storedEvents(env, stream, { schema: TestEventSchema })).map((e) => e.id)).toEqual([1, 2, 3]);
  });

  it("racing writers with the same expectedLastId: exactly one wins", async () => {
    const stream = await newStream(env);
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "first" });
    const writers = await Promise.all(Array.from({ length: 3 }, () => env.client()));
    const attempts = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) =>
        (writers[i % writers.length] ?? env.events).publish(
          `${stream}.${i % 4}`,
          TestEventSchema,
          { text: `writer ${i}` },
          { expectedLastId: 1 },
        ),
      ),
    );
    const won = attempts.filter((a): a is PromiseFulfilledResult<PublishedEvent> => a.status === "fulfilled");
    const lost = attempts.filter((a): a is PromiseRejectedResult => a.status === "rejected");
    expect(won).toHaveLength(1);
    expect(won[0]?.value).toEqual({ id: 2, stream, duplicate: false });
    expect(lost.map((a) => (a.reason as WindshiftError).code)).toEqual(Array(11).fill(ErrorCode.WrongSequence));
    expect((await storedEvents(env, stream, { schema: TestEventSchema })).map((e) => e.id)).toEqual([1, 2]);
  });

  it("racing writers with the same expectedLastSubjectId: exactly one wins per subject", async () => {
    const stream = await newStream(env);
    const a1 = await env.events.publish(`${stream}.a`, TestEventSchema, { text: "a1" });
    const writers = await Promise.all(Array.from({ length: 3 }, () => env.client()));
    const race = (subject: string, expected: number) =>
      Array.from({ length: 6 }, (_, i) =>
        (writers[i % writers.length] ?? env.events).publish(
          subject,
          TestEventSchema,
          { text: `${subject} ${i}` },
          { expectedLastSubjectId: expected },
        ),
      );
    const onA = race(`${stream}.a`, a1.id);
    const onB = race(`${stream}.b`, 0);
    const [a, b] = await Promise.all([Promise.allSettled(onA), Promise.allSettled(onB)]);
    for (const attempts of [a, b]) {
      expect(attempts.filter((x) => x.status === "fulfilled")).toHaveLength(1);
      const lost = attempts.filter((x): x is PromiseRejectedResult => x.status === "rejected");
      expect(lost.map((x) => (x.reason as WindshiftError).code)).toEqual(Array(5).fill(ErrorCode.WrongSequence));
    }
    const events = await storedEvents(env, stream, { schema: TestEventSchema });
    expect(events.map((e) => e.subject)).toEqual(expect.arrayContaining([`${stream}.a`, `${stream}.a`, `${stream}.b`]));
    expect(events).toHaveLength(3);
  });
});

describeEngines("publish: retries and cancellation", (env) => {
  it("does not retry unless asked", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const err = await windshiftError(events.publish(`${uniqueName("nowhere")}.a`, TestEventSchema, {}));
    expect(err.code).toBe(ErrorCode.UnboundSubject);
    expect(logger.lines.filter((l) => l.message.includes("retrying"))).toHaveLength(0);
  });

  it("retries transient failures per the retry options, then gives up", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const error = await windshiftError(
      until(
        env,
        events.publish(
          `${uniqueName("nowhere")}.a`,
          TestEventSchema,
          {},
          { retry: { maxAttempts: 4, initialDelayMs: 5 } },
        ),
        "the retries to give up",
      ),
    );
    expect(error.code).toBe(ErrorCode.UnboundSubject);
    expect(logger.lines.filter((l) => l.message === "publish failed, retrying")).toHaveLength(3);
  });

  it("retries until the stream appears, with a generated idempotency key", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const stream = uniqueName();
    const pending = events.publish(
      `${stream}.a`,
      TestEventSchema,
      { text: "late" },
      { retry: { initialDelayMs: 20, maxDelayMs: 100, maxElapsedMs: 10_000 } },
    );
    await env.eventually(() => logger.lines.some((l) => l.message === "publish failed, retrying"), {
      what: "a retry",
    });
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    expect(await until(env, pending, "the retried publish")).toMatchObject({ id: 1, stream, duplicate: false });
    const [event] = await storedEvents(env, stream, { schema: TestEventSchema });
    expect(event?.data.text).toBe("late");
    expect(event?.headers.idempotencyKey).toMatch(/^[\w-]{10,}$/);
  });

  it("never retries a wrong sequence", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const stream = await newStream(env);
    await events.publish(`${stream}.a`, TestEventSchema, {});
    const err = await windshiftError(
      events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastId: 5, retry: true }),
    );
    expect(err.code).toBe(ErrorCode.WrongSequence);
    expect(logger.lines.filter((l) => l.message.includes("retrying"))).toHaveLength(0);
  });

  it("an abort while it waits to retry rejects with ABORTED and the reason", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const stream = uniqueName();
    const controller = new AbortController();
    const pending = windshiftError(
      events.publish(
        `${stream}.a`,
        TestEventSchema,
        {},
        { retry: { initialDelayMs: 60_000, maxDelayMs: 60_000, jitter: 0 }, signal: controller.signal },
      ),
    );
    await env.eventually(() => logger.lines.some((l) => l.message === "publish failed, retrying"), {
      what: "a retry",
    });
    controller.abort(new Error("shutting down"));
    const err = await pending;
    expect(err.code).toBe(ErrorCode.Aborted);
    expect((err.cause as Error).message).toBe("shutting down");
    // Nothing is stored once the stream exists.
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await env.elapse(100);
    expect(await storedEvents(env, stream, { schema: TestEventSchema })).toEqual([]);
  });

  it("with an aborted signal rejects with ABORTED and sends nothing", async () => {
    const stream = await newStream(env);
    const err = await windshiftError(
      env.events.publish(`${stream}.a`, TestEventSchema, {}, { signal: AbortSignal.abort() }),
    );
    expect(err.code).toBe(ErrorCode.Aborted);
    expect(await storedEvents(env, stream, { schema: TestEventSchema })).toEqual([]);
  });
});
