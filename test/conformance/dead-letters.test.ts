import { create, toBinary } from "@bufbuild/protobuf";
import { expect, it } from "vitest";
import { OtherEventSchema, TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, type Event, Headers, handle, PermanentError } from "../../src/index.js";
import { windshiftError } from "../helpers.js";
import { recordingLogger } from "../log.js";
import { describeEngines, type EngineEnv, streamWithWorker, uniqueName } from "./harness.js";
import { publishUndecodable } from "./process-support.js";
import { storedCount, storedEvents } from "./support.js";

/** A stream with a consumer, and a dead-letter stream capturing `<dlq>.>`. */
async function setup(env: EngineEnv, streamOptions: { deduplicationWindowMs?: number } = {}) {
  const dlq = uniqueName("dlq");
  await env.events.ensureStream(dlq, { subjects: [`${dlq}.>`] });
  return { ...(await streamWithWorker(env.events, {}, streamOptions)), dlq };
}

describeEngines("dead letters", (env) => {
  it("carry the payload and headers untouched plus why, after the last attempt; replay restores them", async () => {
    const { stream, consumer, dlq } = await setup(env, { deduplicationWindowMs: 3_000 });
    const occurredAt = new Date("2026-01-02T03:04:05.678Z");
    const published = await env.events.publish(
      `${stream}.orders.created`,
      TestEventSchema,
      { text: "poison until fixed", number: 7n },
      { idempotencyKey: "order-7", occurredAt, headers: { "X-Tenant": "acme" } },
    );
    let fixed = false;
    const handled: Event[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        if (!fixed) throw new Error(`cannot handle attempt ${event.deliveryAttempt}\nsecond line`);
        handled.push(event);
      }),
      { maxAttempts: 3, backoff: { initialDelayMs: 10 }, deadLetter: { subject: `${dlq}.${stream}` } },
    );
    await env.eventually(() => processor.stats.deadLettered === 1, { what: "the dead letter" });
    await env.settled(stream, consumer, 1);
    expect(processor.stats).toMatchObject({ failed: 3, retried: 2, deadLettered: 1, rejected: 0 });

    const letters = await storedEvents(env, dlq);
    expect(letters).toHaveLength(1);
    const letter = letters[0] as Event;
    expect(letter.subject).toBe(`${dlq}.${stream}`);
    expect([...letter.payload]).toEqual([
      ...toBinary(TestEventSchema, create(TestEventSchema, { text: "poison until fixed", number: 7n })),
    ]);
    const h = letter.headers;
    expect(h.get("X-Tenant")).toBe("acme");
    expect(h.get(Headers.DataType)).toBe(TestEventSchema.typeName);
    expect(letter.type).toBe(TestEventSchema.typeName);
    expect(h.get(Headers.PublishedTime)).toBe(occurredAt.toISOString());
    expect(h.get(Headers.DeadLetterReason)).toBe("max-attempts");
    expect(h.get(Headers.DeadLetterSubject)).toBe(`${stream}.orders.created`);
    expect(h.get(Headers.DeadLetterStream)).toBe(stream);
    expect(h.get(Headers.DeadLetterConsumer)).toBe(consumer);
    expect(h.get(Headers.DeadLetterSequence)).toBe(String(published.id));
    expect(h.get(Headers.DeadLetterAttempts)).toBe("3");
    expect(h.get(Headers.DeadLetterError)).toBe("Error: cannot handle attempt 3 second line");
    expect(h.get(Headers.DeadLetterMsgId)).toBe("order-7");
    expect(h.get(Headers.MsgId)).not.toBe("order-7");
    expect(h.idempotencyKey).not.toBe("order-7");

    // Within the original stream's duplicate window the key would be dropped: the dead letter stays.
    fixed = true;
    const early = await env.events.replayDeadLetters(dlq);
    expect(early).toEqual({ replayed: 0, duplicates: [letter.id], skipped: [] });
    expect(await storedCount(env, dlq)).toBe(1);
    // Once the window has passed, it goes back.
    await env.eventually(async () => (await env.events.replayDeadLetters(dlq)).replayed === 1, {
      stepMs: 250,
      what: "the replay to get past the duplicate window",
    });
    await env.eventually(() => handled.length === 1, { what: "the replayed event to be handled" });
    const again = handled[0] as Event;
    expect(again.subject).toBe(`${stream}.orders.created`);
    expect([...again.payload]).toEqual([...letter.payload]);
    expect(again.headers.idempotencyKey).toBe("order-7");
    expect(again.headers.get("X-Tenant")).toBe("acme");
    expect(again.headers.occurredAt).toEqual(occurredAt);
    expect(again.headers.get(Headers.DeadLetterReason)).toBeUndefined();
    expect(again.deliveryAttempt).toBe(1);
    expect(await storedCount(env, dlq)).toBe(0);
  });

  it("only once the attempts are used up: none after the first failures, one after the last", async () => {
    const { stream, consumer, dlq } = await setup(env);
    const attempts: number[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        attempts.push(event.deliveryAttempt);
        throw new Error("always");
      }),
      { maxAttempts: 3, backoff: { initialDelayMs: 300, jitter: 0 }, deadLetter: { subject: `${dlq}.letters` } },
    );
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "x" });
    await env.eventually(() => processor.stats.retried === 2, { what: "two failed attempts given back" });
    expect(attempts).toEqual([1, 2]);
    expect(processor.stats.deadLettered).toBe(0);
    expect(await storedCount(env, dlq)).toBe(0);
    await env.eventually(() => processor.stats.deadLettered === 1, { what: "the dead letter after attempt 3" });
    await env.settled(stream, consumer, 1);
    expect(attempts).toEqual([1, 2, 3]);
    const [letter] = await storedEvents(env, dlq);
    expect(letter?.headers.get(Headers.DeadLetterReason)).toBe("max-attempts");
    expect(letter?.headers.get(Headers.DeadLetterAttempts)).toBe("3");
  });

  it("after the consumer's maxDeliveryAttempts when the processor sets no maxAttempts", async () => {
    const { stream, dlq } = await setup(env);
    const limited = await env.events.ensureConsumer(stream, {
      name: "limited",
      from: { start: true },
      maxDeliveryAttempts: 2,
    });
    const attempts: number[] = [];
    await using processor = await env.events.process(
      stream,
      limited.name,
      handle(TestEventSchema, (_data, event) => {
        attempts.push(event.deliveryAttempt);
        throw new Error("always");
      }),
      { backoff: { initialDelayMs: 10 }, deadLetter: { subject: `${dlq}.letters` } },
    );
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "x" });
    await env.eventually(() => processor.stats.deadLettered === 1, { what: "the dead letter" });
    await env.settled(stream, limited.name, 1);
    expect(attempts).toEqual([1, 2]);
    const [letter] = await storedEvents(env, dlq);
    expect(letter?.headers.get(Headers.DeadLetterReason)).toBe("max-attempts");
    expect(letter?.headers.get(Headers.DeadLetterAttempts)).toBe("2");
  });

  it("say why: permanent, invalid-data and unknown-type, with the subject chosen per event", async () => {
    const { stream, consumer, dlq } = await setup(env);
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "permanent" });
    await publishUndecodable(env, `${stream}.b`);
    await env.events.publish(`${stream}.c`, OtherEventSchema, { name: "stranger" });
    const calls: string[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (data) => {
        calls.push(data.text);
        throw new PermanentError("never");
      }),
      { deadLetter: { subject: (event) => `${dlq}.${event.subject}` } },
    );
    await env.eventually(() => processor.stats.deadLettered === 3, { what: "three dead letters" });
    await env.settled(stream, consumer, 3);
    expect(calls).toEqual(["permanent"]);
    const letters = await storedEvents(env, dlq);
    expect(
      letters.map((l) => [
        l.subject,
        l.headers.get(Headers.DeadLetterReason),
        l.headers.get("WS-Dead-Letter-Attempts"),
      ]),
    ).toEqual([
      [`${dlq}.${stream}.a`, "permanent", "1"],
      [`${dlq}.${stream}.b`, "invalid-data", "1"],
      [`${dlq}.${stream}.c`, "unknown-type", "1"],
    ]);
    expect(letters[0]?.headers.get(Headers.DeadLetterError)).toBe("PermanentError: never");
  });

  it("replay: a filter, a limit, keep, and messages that are not dead letters left alone", async () => {
    const { stream, consumer, dlq } = await setup(env);
    for (const text of ["a", "b", "c"]) await env.events.publish(`${stream}.x`, TestEventSchema, { text });
    // Not a dead letter: no WS-Dead-Letter-Subject to go back to.
    await env.events.publish(`${dlq}.manual`, TestEventSchema, { text: "stray" });
    let fixed = false;
    const handled: string[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (data) => {
        if (!fixed) throw new PermanentError("not yet");
        handled.push(data.text);
      }),
      { deadLetter: { subject: `${dlq}.letters` } },
    );
    await env.eventually(() => processor.stats.deadLettered === 3, { what: "three dead letters" });
    fixed = true;

    // keep: replayed, and still there.
    const kept = await env.events.replayDeadLetters(dlq, { subject: `${dlq}.letters`, limit: 1, keep: true });
    expect(kept).toEqual({ replayed: 1, duplicates: [], skipped: [] });
    await env.eventually(() => handled.length === 1, { what: "the first replayed event" });
    expect(handled).toEqual(["a"]);
    expect(await storedCount(env, dlq)).toBe(4);

    // The stray message comes first and does not count towards the limit; the
    // one replayed letter is deleted, the rest stay.
    const one = await env.events.replayDeadLetters(dlq, { limit: 1 });
    expect(one.replayed).toBe(1);
    expect(one.skipped).toHaveLength(1);
    expect(one.duplicates).toEqual([]);
    expect((await storedEvents(env, dlq)).map((l) => l.subject)).toEqual([
      `${dlq}.manual`,
      `${dlq}.letters`,
      `${dlq}.letters`,
    ]);
    const rest = await env.events.replayDeadLetters(dlq);
    expect(rest.replayed).toBe(2);
    expect(rest.skipped).toEqual(one.skipped);
    await env.eventually(() => handled.length === 4, { what: "all replayed events" });
    expect(handled).toEqual(["a", "a", "b", "c"]);
    const left = await storedEvents(env, dlq);
    expect(left.map((l) => l.subject)).toEqual([`${dlq}.manual`]);
    expect(left[0]?.id).toBe(one.skipped[0]);

    expect(await env.events.replayDeadLetters(dlq, { subject: `${dlq}.letters` })).toEqual({
      replayed: 0,
      duplicates: [],
      skipped: [],
    });
  });

  it("lose nothing when the dead letter cannot be published: the event is given back and tried again", async () => {
    const { stream, consumer } = await setup(env);
    const late = uniqueName("late");
    const logger = recordingLogger();
    const events = await env.client({ logger });
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "x" });
    await using processor = await events.process(
      stream,
      consumer,
      handle(TestEventSchema, () => {
        throw new PermanentError("no");
      }),
      // A subject chosen per event is not checked up front.
      { backoff: { initialDelayMs: 100, jitter: 0 }, deadLetter: { subject: () => `${late}.letters` } },
    );
    await env.eventually(() => logger.lines.some((l) => l.message.startsWith("dead-lettering failed")), {
      what: "the failed dead letter to be logged",
    });
    expect(processor.stats.deadLettered).toBe(0);
    expect((await env.progress(stream, consumer)).ackFloor).toBe(0);
    await env.events.ensureStream(late, { subjects: [`${late}.>`] });
    await env.eventually(() => processor.stats.deadLettered === 1, { what: "the dead letter once its stream exists" });
    await env.settled(stream, consumer, 1);
    expect(await storedCount(env, late)).toBe(1);
  });

  it("refuses a fixed dead-letter subject no stream captures", async () => {
    const { stream, consumer } = await setup(env);
    const err = await windshiftError(() =>
      env.events.process(stream, consumer, () => {}, { deadLetter: { subject: "nowhere.at.all" } }),
    );
    expect(err.code).toBe(ErrorCode.UnboundSubject);
  });

  it("replay validates its arguments", async () => {
    for (const [stream, options] of [
      ["bad name", undefined],
      ["ok", { subject: "a..b" }],
      ["ok", { limit: 0 }],
      ["ok", { keep: "yes" }],
      ["ok", { nope: 1 }],
    ] as const) {
      const err = await windshiftError(() => env.events.replayDeadLetters(stream, options as never));
      expect(err.code).toBe(ErrorCode.Validation);
    }
    expect((await windshiftError(() => env.events.replayDeadLetters("missing"))).code).toBe(ErrorCode.NotFound);
  });
});
