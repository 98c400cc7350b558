import { create, toBinary } from "@bufbuild/protobuf";
import { jetstreamManager, type StoredMsg } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { OtherEventSchema, TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, type Event, Headers, handle, PermanentError } from "../src/index.js";
import { streamWithWorker, uniqueName, useServer, waitFor, waitForSettled, windshiftError } from "./helpers.js";
import { recordingLogger } from "./log.js";

const env = useServer();

interface Setup {
  stream: string;
  consumer: string;
  dlq: string;
}

/** A stream with a consumer, and a dead-letter stream capturing `<dlq>.>`. */
async function setup(streamOptions: { deduplicationWindowMs?: number } = {}): Promise<Setup> {
  const dlq = uniqueName("dlq");
  await env.events.ensureStream(dlq, { subjects: [`${dlq}.>`] });
  return { ...(await streamWithWorker(env.events, {}, streamOptions)), dlq };
}

async function stored(stream: string): Promise<StoredMsg[]> {
  const jsm = await jetstreamManager(env.nc);
  const info = await jsm.streams.info(stream);
  const out: StoredMsg[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m !== null) out.push(m);
  }
  return out;
}

function settled(stream: string, consumer: string, count: number): Promise<void> {
  return waitForSettled(env.nc, stream, consumer, count);
}

describe("dead letters", () => {
  it("carry the payload and headers untouched plus why, after the last attempt; replay restores them", async () => {
    const { stream, consumer, dlq } = await setup({ deduplicationWindowMs: 3_000 });
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
    await waitFor(() => processor.stats.deadLettered === 1, { what: "the dead letter" });
    await settled(stream, consumer, 1);
    expect(processor.stats).toMatchObject({ failed: 3, retried: 2, deadLettered: 1, rejected: 0 });

    const [letter] = await stored(dlq);
    expect(letter).toBeDefined();
    const m = letter as StoredMsg;
    expect(m.subject).toBe(`${dlq}.${stream}`);
    expect(m.data).toEqual(
      toBinary(TestEventSchema, create(TestEventSchema, { text: "poison until fixed", number: 7n })),
    );
    const h = m.header;
    expect(h.get("X-Tenant")).toBe("acme");
    expect(h.get(Headers.DataType)).toBe(TestEventSchema.typeName);
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

    // Within the original stream's duplicate window the key would be dropped: the dead letter stays.
    fixed = true;
    const early = await env.events.replayDeadLetters(dlq);
    expect(early).toEqual({ replayed: 0, duplicates: [m.seq], skipped: [] });
    expect(await stored(dlq)).toHaveLength(1);
    // Once the window has passed, it goes back.
    await waitFor(async () => (await env.events.replayDeadLetters(dlq)).replayed === 1, {
      what: "the replay to get past the duplicate window",
    });
    await waitFor(() => handled.length === 1, { what: "the replayed event to be handled" });
    const again = handled[0] as Event;
    expect(again.subject).toBe(`${stream}.orders.created`);
    expect([...again.payload]).toEqual([...m.data]);
    expect(again.headers.idempotencyKey).toBe("order-7");
    expect(again.headers.get("X-Tenant")).toBe("acme");
    expect(again.headers.occurredAt).toEqual(occurredAt);
    expect(again.headers.get(Headers.DeadLetterReason)).toBeUndefined();
    expect(await stored(dlq)).toHaveLength(0);
  });

  it("say why: permanent, invalid-data and unknown-type, with the subject chosen per event", async () => {
    const { stream, consumer, dlq } = await setup();
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "permanent" });
    const h = natsHeaders();
    h.set(Headers.DataType, TestEventSchema.typeName);
    await env.nc.request(`${stream}.b`, new Uint8Array([0xff, 0xff]), { headers: h, timeout: 5_000 });
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
    await waitFor(() => processor.stats.deadLettered === 3, { what: "three dead letters" });
    await settled(stream, consumer, 3);
    expect(calls).toEqual(["permanent"]);
    const letters = await stored(dlq);
    expect(
      letters.map((l) => [l.subject, l.header.get(Headers.DeadLetterReason), l.header.get("WS-Dead-Letter-Attempts")]),
    ).toEqual([
      [`${dlq}.${stream}.a`, "permanent", "1"],
      [`${dlq}.${stream}.b`, "invalid-data", "1"],
      [`${dlq}.${stream}.c`, "unknown-type", "1"],
    ]);
    expect(letters[0]?.header.get(Headers.DeadLetterError)).toBe("PermanentError: never");
  });

  it("replay: a filter, a limit, keep, and messages that are not dead letters left alone", async () => {
    const { stream, consumer, dlq } = await setup();
    for (const text of ["a", "b", "c"]) await env.events.publish(`${stream}.x`, TestEventSchema, { text });
    await env.nc.request(`${dlq}.manual`, new Uint8Array([1]), { timeout: 5_000 });
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
    await waitFor(() => processor.stats.deadLettered === 3, { what: "three dead letters" });
    fixed = true;

    const kept = await env.events.replayDeadLetters(dlq, { subject: `${dlq}.letters`, limit: 1, keep: true });
    expect(kept).toEqual({ replayed: 1, duplicates: [], skipped: [] });
    await waitFor(() => handled.length === 1, { what: "the first replayed event" });
    expect(await stored(dlq)).toHaveLength(4);

    // The stray message comes first and does not count towards the limit.
    const one = await env.events.replayDeadLetters(dlq, { limit: 1 });
    expect(one.replayed).toBe(1);
    expect(one.skipped).toHaveLength(1);
    const rest = await env.events.replayDeadLetters(dlq);
    expect(rest.replayed).toBe(2);
    expect(rest.skipped).toHaveLength(1);
    await waitFor(() => handled.length === 4, { what: "all replayed events" });
    expect(handled).toEqual(["a", "a", "b", "c"]);
    const left = await stored(dlq);
    expect(left.map((l) => l.subject)).toEqual([`${dlq}.manual`]);

    expect(await env.events.replayDeadLetters(dlq, { subject: `${dlq}.letters` })).toEqual({
      replayed: 0,
      duplicates: [],
      skipped: [],
    });
  });

  it("lose nothing when the dead letter cannot be published: the event is given back and tried again", async () => {
    const { stream, consumer } = await setup();
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
    await waitFor(() => logger.lines.some((l) => l.message.startsWith("dead-lettering failed")), {
      what: "the failed dead letter to be logged",
    });
    expect(processor.stats.deadLettered).toBe(0);
    await env.events.ensureStream(late, { subjects: [`${late}.>`] });
    await waitFor(() => processor.stats.deadLettered === 1, { what: "the dead letter once its stream exists" });
    await settled(stream, consumer, 1);
    expect(await stored(late)).toHaveLength(1);
  });

  it("refuses a fixed dead-letter subject no stream captures", async () => {
    const { stream, consumer } = await setup();
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
