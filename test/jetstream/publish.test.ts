// What only a NATS server shows about publish: headers as stored on the wire,
// acknowledgements that never come, server-version warnings and JetStream
// error codes. The behaviour itself is in test/conformance/publish.test.ts.
import { fromBinary } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode } from "../../src/index.js";
import { uniqueName, useServer, windshiftError } from "../helpers.js";
import { recordingLogger } from "../log.js";

const env = useServer();

async function newStream(): Promise<string> {
  const stream = uniqueName();
  await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
  return stream;
}

/** A subject nobody stores, with a subscriber that never replies. */
async function silentSubject(): Promise<string> {
  const subject = `${uniqueName("silent")}.a`;
  const nc = await env.connect();
  nc.subscribe(subject);
  await nc.flush();
  return subject;
}

describe("publish on the wire", () => {
  it("writes windshift-go's headers and the Protobuf payload", async () => {
    const stream = await newStream();
    const occurredAt = new Date("2024-05-06T07:08:09.123Z");
    await env.events.publish(
      `${stream}.a`,
      TestEventSchema,
      { text: "x", number: 7n },
      { idempotencyKey: "key-1", occurredAt },
    );
    const jsm = await jetstreamManager(env.nc);
    const msg = await jsm.streams.getMessage(stream, { seq: 1 });
    const headers: Record<string, string> = {};
    for (const k of msg?.header.keys() ?? []) headers[k] = msg?.header.get(k) ?? "";
    expect(headers).toEqual({
      "WS-Data-Type": "windshift.test.v1.TestEvent",
      "WS-Published-Time": "2024-05-06T07:08:09.123Z",
      "Nats-Msg-Id": "key-1",
    });
    expect(fromBinary(TestEventSchema, msg?.data ?? new Uint8Array()).number).toBe(7n);
  });

  it("warns once per connection that expectedLastSubjectId is unsafe on servers before 2.9.21", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const stream = await newStream();
    const a1 = await events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastSubjectId: 0 });
    await events.publish(`${stream}.b`, TestEventSchema, {}, { expectedLastSubjectId: 0 });
    await events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastSubjectId: a1.id });
    const warnings = logger.lines.filter((l) => l.level === "warn" && l.message.includes("2.9.21"));
    expect(warnings).toHaveLength(1); // once per connection, on this 2.9.10 server
  });

  it("a refusal by the stream carries the JetStream error code", async () => {
    const stream = uniqueName();
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`], maxEvents: 1, discardPolicy: "new" });
    await env.events.publish(`${stream}.a`, TestEventSchema, {});
    const err = await windshiftError(env.events.publish(`${stream}.a`, TestEventSchema, {}));
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.details.jsErrorCode).toBeTypeOf("number");
  });
});

describe("publish without an acknowledgement", () => {
  it("fails with PUBLISH_TIMEOUT when nobody acknowledges in time", async () => {
    const subject = await silentSubject();
    const err = await windshiftError(env.events.publish(subject, TestEventSchema, {}, { timeoutMs: 100 }));
    expect(err.code).toBe(ErrorCode.PublishTimeout);
    expect(err.message).toMatch(/may or may not/);
  });

  it("rejects with ABORTED and the reason when the signal fires while it waits", async () => {
    const subject = await silentSubject();
    const controller = new AbortController();
    const pending = env.events.publish(subject, TestEventSchema, {}, { signal: controller.signal, timeoutMs: 10_000 });
    controller.abort(new Error("shutting down"));
    const err = await windshiftError(pending);
    expect(err.code).toBe(ErrorCode.Aborted);
    expect((err.cause as Error).message).toBe("shutting down");
  });
});
