import { create } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, WindshiftError } from "../src/index.js";
import { uniqueName, useServer, waitFor, windshiftError } from "./helpers.js";
import { recordingLogger } from "./log.js";

const env = useServer();

async function newStream(options: { deduplicationWindowMs?: number } = {}): Promise<string> {
  const stream = uniqueName();
  await env.events.ensureStream(stream, { subjects: [`${stream}.>`], ...options });
  return stream;
}

async function storedHeaders(stream: string, seq: number): Promise<Record<string, string>> {
  const jsm = await jetstreamManager(env.nc);
  const msg = await jsm.streams.getMessage(stream, { seq });
  const out: Record<string, string> = {};
  for (const k of msg?.header.keys() ?? []) out[k] = msg?.header.get(k) ?? "";
  return out;
}

describe("publish", () => {
  it("stores the event and returns its stream sequence as id", async () => {
    const stream = await newStream();
    const a = await env.events.publish(`${stream}.a`, TestEventSchema, { text: "one" });
    const b = await env.events.publish(`${stream}.b`, TestEventSchema, create(TestEventSchema, { text: "two" }));
    expect(a).toEqual({ id: 1, stream, duplicate: false });
    expect(b).toEqual({ id: 2, stream, duplicate: false });
    const jsm = await jetstreamManager(env.nc);
    expect((await jsm.streams.info(stream)).state.messages).toBe(2);
  });

  it("writes windshift-go's headers and the Protobuf payload", async () => {
    const stream = await newStream();
    const occurredAt = new Date("2024-05-06T07:08:09.123Z");
    await env.events.publish(
      `${stream}.a`,
      TestEventSchema,
      { text: "x", number: 7n },
      {
        idempotencyKey: "key-1",
        occurredAt,
      },
    );
    const headers = await storedHeaders(stream, 1);
    expect(headers).toEqual({
      "WS-Data-Type": "windshift.test.v1.TestEvent",
      "WS-Published-Time": "2024-05-06T07:08:09.123Z",
      "Nats-Msg-Id": "key-1",
    });
    const jsm = await jetstreamManager(env.nc);
    const msg = await jsm.streams.getMessage(stream, { seq: 1 });
    const { fromBinary } = await import("@bufbuild/protobuf");
    expect(fromBinary(TestEventSchema, msg?.data ?? new Uint8Array()).number).toBe(7n);
  });

  it("stamps the current time when occurredAt is not given", async () => {
    const stream = await newStream();
    const before = Date.now();
    await env.events.publish(`${stream}.a`, TestEventSchema, {});
    const after = Date.now();
    const t = Date.parse((await storedHeaders(stream, 1))["WS-Published-Time"] ?? "");
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(after);
  });

  it("deduplicates by idempotency key within the window", async () => {
    const stream = await newStream();
    const first = await env.events.publish(`${stream}.a`, TestEventSchema, { text: "1" }, { idempotencyKey: "k" });
    const again = await env.events.publish(`${stream}.a`, TestEventSchema, { text: "2" }, { idempotencyKey: "k" });
    const other = await env.events.publish(`${stream}.a`, TestEventSchema, { text: "3" }, { idempotencyKey: "k2" });
    expect(first).toEqual({ id: 1, stream, duplicate: false });
    expect(again).toEqual({ id: 1, stream, duplicate: true });
    expect(other).toEqual({ id: 2, stream, duplicate: false });
    const jsm = await jetstreamManager(env.nc);
    expect((await jsm.streams.info(stream)).state.messages).toBe(2);
  });

  it("stores the same key again once the deduplication window has passed", async () => {
    const stream = await newStream({ deduplicationWindowMs: 300 });
    const first = await env.events.publish(`${stream}.a`, TestEventSchema, {}, { idempotencyKey: "k" });
    expect(first.duplicate).toBe(false);
    const later = await waitFor(
      async () => {
        const r = await env.events.publish(`${stream}.a`, TestEventSchema, {}, { idempotencyKey: "k" });
        return r.duplicate ? undefined : r;
      },
      { intervalMs: 50, what: "the key to be forgotten" },
    );
    expect(later.id).toBeGreaterThan(first.id);
  });

  it("checks expectedLastId (optimistic concurrency)", async () => {
    const stream = await newStream();
    const a = await env.events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastId: 0 });
    expect(a.id).toBe(1);
    const b = await env.events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastId: 1 });
    expect(b.id).toBe(2);
    const err = await windshiftError(env.events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastId: 1 }));
    expect(err.code).toBe(ErrorCode.WrongSequence);
    expect(err).toBeInstanceOf(WindshiftError);
    const jsm = await jetstreamManager(env.nc);
    expect((await jsm.streams.info(stream)).state.messages).toBe(2);
  });

  it("checks expectedLastSubjectId per subject, and warns on servers before 2.9.21", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const stream = await newStream();
    const a1 = await events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastSubjectId: 0 });
    const b1 = await events.publish(`${stream}.b`, TestEventSchema, {}, { expectedLastSubjectId: 0 });
    const a2 = await events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastSubjectId: a1.id });
    expect([a1.id, b1.id, a2.id]).toEqual([1, 2, 3]);
    const err = await windshiftError(
      events.publish(`${stream}.b`, TestEventSchema, {}, { expectedLastSubjectId: a2.id }),
    );
    expect(err.code).toBe(ErrorCode.WrongSequence);
    const warnings = logger.lines.filter((l) => l.level === "warn" && l.message.includes("2.9.21"));
    expect(warnings).toHaveLength(1); // once per connection, on this 2.9.10 server
  });

  it("fails with UNBOUND_SUBJECT when no stream captures the subject", async () => {
    const err = await windshiftError(env.events.publish(`${uniqueName("nowhere")}.a`, TestEventSchema, {}));
    expect(err.code).toBe(ErrorCode.UnboundSubject);
  });

  it("fails with PUBLISH_TIMEOUT when nobody acknowledges in time", async () => {
    const subject = `${uniqueName("silent")}.a`;
    const nc = await env.connect();
    nc.subscribe(subject); // a responder that never answers
    await nc.flush();
    const err = await windshiftError(env.events.publish(subject, TestEventSchema, {}, { timeoutMs: 100 }));
    expect(err.code).toBe(ErrorCode.PublishTimeout);
    expect(err.message).toMatch(/may or may not/);
  });

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
    const err = await windshiftError(
      events.publish(
        `${uniqueName("nowhere")}.a`,
        TestEventSchema,
        {},
        { retry: { maxAttempts: 4, initialDelayMs: 5 } },
      ),
    );
    expect(err.code).toBe(ErrorCode.UnboundSubject);
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
      {
        retry: { initialDelayMs: 20, maxDelayMs: 100, maxElapsedMs: 10_000 },
      },
    );
    await waitFor(() => logger.lines.some((l) => l.message === "publish failed, retrying"), { what: "a retry" });
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    const published = await pending;
    expect(published).toMatchObject({ id: 1, stream, duplicate: false });
    const headers = await storedHeaders(stream, 1);
    expect(headers["Nats-Msg-Id"]).toMatch(/^[\w-]{10,}$/);
  });

  it("never retries a wrong sequence", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const stream = await newStream();
    await events.publish(`${stream}.a`, TestEventSchema, {});
    const err = await windshiftError(
      events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastId: 5, retry: true }),
    );
    expect(err.code).toBe(ErrorCode.WrongSequence);
    expect(logger.lines.filter((l) => l.message.includes("retrying"))).toHaveLength(0);
  });

  it("rejects with ABORTED when the signal fires, and with an aborted signal sends nothing", async () => {
    const subject = `${uniqueName("silent")}.a`;
    const nc = await env.connect();
    nc.subscribe(subject);
    await nc.flush();
    const controller = new AbortController();
    const pending = env.events.publish(subject, TestEventSchema, {}, { signal: controller.signal, timeoutMs: 10_000 });
    controller.abort(new Error("shutting down"));
    const err = await windshiftError(pending);
    expect(err.code).toBe(ErrorCode.Aborted);
    expect((err.cause as Error).message).toBe("shutting down");

    const stream = await newStream();
    const err2 = await windshiftError(
      env.events.publish(`${stream}.a`, TestEventSchema, {}, { signal: AbortSignal.abort() }),
    );
    expect(err2.code).toBe(ErrorCode.Aborted);
    const jsm = await jetstreamManager(env.nc);
    expect((await jsm.streams.info(stream)).state.messages).toBe(0);
  });

  it("reports a refusal by the stream as a SERVER error with the server's reason", async () => {
    const stream = uniqueName();
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`], maxEvents: 1, discardPolicy: "new" });
    await env.events.publish(`${stream}.a`, TestEventSchema, {});
    const err = await windshiftError(env.events.publish(`${stream}.a`, TestEventSchema, {}));
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toMatch(/maximum messages/i);
    expect(err.details.jsErrorCode).toBeTypeOf("number");
  });
});
