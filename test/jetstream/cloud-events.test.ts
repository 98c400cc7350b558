/**
 * CloudEvents as other producers send them: messages stored with exactly the
 * headers and payload given, through the NATS connection itself.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { type Events, handle } from "../../src/index.js";
import { type EngineEnv, uniqueName, useEngine } from "../conformance/harness.js";
import { storedEvents } from "../conformance/support.js";

const SOURCE = "/orders-service";
const SCHEMA = "https://example.com/schemas/windshift.test.v1";

async function newStream(events: Events): Promise<string> {
  const stream = uniqueName();
  await events.ensureStream(stream, { subjects: [`${stream}.>`] });
  return stream;
}

/** Stores a message with exactly these headers and payload (JetStream only: through the connection itself). */
async function publishRaw(
  env: EngineEnv,
  subject: string,
  headers: readonly (readonly [string, string])[],
  payload: Uint8Array,
): Promise<void> {
  const h = natsHeaders();
  for (const [name, value] of headers) h.set(name, value);
  await env.nc?.request(subject, payload, { headers: h, timeout: 5_000 });
}

describe("cloud events on the wire (raw NATS messages)", () => {
  const env = useEngine("jetstream");

  it("sends the headers on the wire byte for byte", async () => {
    const events = await env.client({ cloudEvents: { source: SOURCE, dataschema: SCHEMA } });
    const stream = await newStream(events);
    const subject = `${stream}.created`;
    const sub = env.nc?.subscribe(subject, { max: 1 });
    await env.nc?.flush();
    await events.publish(
      subject,
      TestEventSchema,
      { text: "x" },
      { idempotencyKey: "order 1001 \u20AC", occurredAt: new Date("2018-04-05T03:56:24Z") },
    );
    let block = "";
    for await (const msg of sub ?? []) block = msg.headers?.toString() ?? "";
    const ce = block.split("\r\n").filter((line) => line.startsWith("ce-"));
    expect(ce.join("\n")).toBe(
      [
        "ce-specversion: 1.0",
        "ce-id: order%201001%20%E2%82%AC",
        "ce-source: /orders-service",
        "ce-type: windshift.test.v1.TestEvent",
        "ce-time: 2018-04-05T03:56:24.000Z",
        "ce-datacontenttype: application/protobuf",
        `ce-dataschema: ${SCHEMA}`,
      ].join("\n"),
    );
    expect(block).toContain("\r\nWS-Data-Type: windshift.test.v1.TestEvent\r\n");
    expect(block).toContain("\r\nNats-Msg-Id: order 1001 \u20AC\r\n");
  });

  it("reads an event with only ce- headers as a typed event", async () => {
    const stream = await newStream(env.events);
    const message = create(TestEventSchema, { text: "from elsewhere", number: 3n });
    await publishRaw(
      env,
      `${stream}.created`,
      [
        ["ce-specversion", "1.0"],
        ["ce-type", "windshift.test.v1.TestEvent"],
        ["ce-time", "2018-04-05T03:56:24Z"],
        ["ce-id", "1234-1234-1234"],
        ["ce-source", "/mycontext/subcontext"],
        ["ce-datacontenttype", "application/protobuf"],
        ["ce-subject", "order%201001"],
        ["ce-partitionkey", "p1"],
      ],
      toBinary(TestEventSchema, message),
    );
    const [event] = await storedEvents(env, stream, { schema: TestEventSchema, atLeast: 1 });
    expect(event?.type).toBe("windshift.test.v1.TestEvent");
    expect(event?.data).toEqual(message);
    expect(event?.headers.occurredAt).toEqual(new Date("2018-04-05T03:56:24Z"));
    expect(event?.headers.idempotencyKey).toBe("1234-1234-1234");
    expect(event?.headers.cloudEvent).toMatchObject({
      mode: "binary",
      source: "/mycontext/subcontext",
      subject: "order 1001",
      extensions: { partitionkey: "p1" },
    });
    const stored = await env.events.getEvent(stream, 1, { schema: TestEventSchema });
    expect([stored.type, stored.data, stored.headers.idempotencyKey]).toEqual([
      "windshift.test.v1.TestEvent",
      message,
      "1234-1234-1234",
    ]);
  });

  it("reads structured-mode events, data_base64 and JSON data", async () => {
    const stream = await newStream(env.events);
    const message = create(TestEventSchema, { text: "structured", number: 5n, tags: ["a", "b"] });
    const envelope = (o: Record<string, unknown>) =>
      new TextEncoder().encode(
        JSON.stringify({
          specversion: "1.0",
          type: "windshift.test.v1.TestEvent",
          source: "/elsewhere",
          time: "2024-01-02T03:04:05.678901Z",
          ...o,
        }),
      );
    const structured: [string, string][] = [["content-type", "application/cloudevents+json"]];
    const binary = envelope({
      id: "s-1",
      datacontenttype: "application/protobuf",
      data_base64: Buffer.from(toBinary(TestEventSchema, message)).toString("base64"),
    });
    await publishRaw(env, `${stream}.a`, structured, binary);
    await publishRaw(
      env,
      `${stream}.a`,
      structured,
      envelope({
        id: "s-2",
        datacontenttype: "application/json",
        data: { text: "structured", number: "5", tags: ["a", "b"] },
      }),
    );
    const events = await storedEvents(env, stream, { schema: TestEventSchema, atLeast: 2 });
    expect(events.map((e) => [e.type, e.headers.idempotencyKey, e.headers.cloudEvent?.mode])).toEqual([
      ["windshift.test.v1.TestEvent", "s-1", "structured"],
      ["windshift.test.v1.TestEvent", "s-2", "structured"],
    ]);
    for (const event of events) {
      expect(event.data).toEqual(message);
      expect(event.decode(TestEventSchema)).toEqual(message);
      expect(event.headers.occurredAt).toEqual(new Date("2024-01-02T03:04:05.678Z"));
    }
    // The payload is the message as stored: the envelope.
    expect(new Uint8Array(events[0]?.payload ?? [])).toEqual(binary);
    const stored = await env.events.getEvent(stream, 2, { schema: TestEventSchema });
    expect([stored.data, stored.headers.cloudEvent?.id]).toEqual([message, "s-2"]);

    // A processor routes them by type like any other event.
    await env.events.ensureConsumer(stream, { name: "p", from: { start: true } });
    const seen: string[] = [];
    const processor = await env.events.process(
      stream,
      "p",
      handle(TestEventSchema, async (data) => {
        seen.push(`${data.text}:${data.number}`);
      }),
    );
    await env.eventually(() => seen.length === 2, { what: "both structured events processed" });
    await processor.close();
    expect(seen).toEqual(["structured:5", "structured:5"]);
  });
});
