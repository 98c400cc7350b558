import { expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import type { Events } from "../../src/index.js";
import { describeEngines, uniqueName } from "./harness.js";
import { storedEvents, windshiftError } from "./support.js";

const SOURCE = "/orders-service";
const SCHEMA = "https://example.com/schemas/windshift.test.v1";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function newStream(events: Events): Promise<string> {
  const stream = uniqueName();
  await events.ensureStream(stream, { subjects: [`${stream}.>`] });
  return stream;
}

describeEngines("cloud events", (env) => {
  it("adds binary-mode headers to every publish, beside windshift's own", async () => {
    const events = await env.client({ cloudEvents: { source: SOURCE, dataschema: SCHEMA } });
    const stream = await newStream(events);
    const occurredAt = new Date("2024-05-06T07:08:09.123Z");
    await events.publish(
      `${stream}.created`,
      TestEventSchema,
      { text: "x" },
      { idempotencyKey: "order 1001 \u20AC", occurredAt },
    );
    await events.publish(`${stream}.created`, TestEventSchema, { text: "y" });
    const [keyed, plain] = await storedEvents(env, stream, { schema: TestEventSchema, atLeast: 2 });
    const names = [
      "ce-specversion",
      "ce-id",
      "ce-source",
      "ce-type",
      "ce-time",
      "ce-datacontenttype",
      "ce-dataschema",
      "WS-Data-Type",
      "WS-Published-Time",
      "Nats-Msg-Id",
    ];
    expect(names.map((name) => keyed?.headers.get(name))).toEqual([
      "1.0",
      "order%201001%20%E2%82%AC",
      SOURCE,
      "windshift.test.v1.TestEvent",
      "2024-05-06T07:08:09.123Z",
      "application/protobuf",
      SCHEMA,
      "windshift.test.v1.TestEvent",
      "2024-05-06T07:08:09.123Z",
      "order 1001 \u20AC",
    ]);
    expect(keyed?.headers.cloudEvent).toEqual({
      mode: "binary",
      specversion: "1.0",
      id: "order 1001 \u20AC",
      source: SOURCE,
      type: "windshift.test.v1.TestEvent",
      time: "2024-05-06T07:08:09.123Z",
      datacontenttype: "application/protobuf",
      dataschema: SCHEMA,
      subject: undefined,
      extensions: {},
    });
    expect(keyed?.headers.idempotencyKey).toBe("order 1001 \u20AC");
    expect(keyed?.data.text).toBe("x");
    // No key: a generated id, and still no idempotency key (nor Nats-Msg-Id).
    expect(plain?.headers.cloudEvent?.id).toMatch(UUID);
    expect(plain?.headers.idempotencyKey).toBeUndefined();
    expect(plain?.headers.get("ce-time")).toBe(plain?.headers.get("WS-Published-Time"));
    const stored = await events.getEvent(stream, 1, { schema: TestEventSchema });
    expect(stored.headers.cloudEvent).toEqual(keyed?.headers.cloudEvent);
  });

  it("uses the retry's generated key as ce-id", async () => {
    const events = await env.client({ cloudEvents: { source: SOURCE } });
    const stream = await newStream(events);
    await events.publish(`${stream}.a`, TestEventSchema, { text: "x" }, { retry: true });
    const stored = await events.getEvent(stream, 1);
    expect(stored.headers.cloudEvent?.id).toMatch(UUID);
    expect(stored.headers.get("Nats-Msg-Id")).toBe(stored.headers.cloudEvent?.id);
    expect(stored.headers.get("ce-dataschema")).toBeUndefined();
  });

  it("refuses headers for the attributes it writes, and takes other ce- headers", async () => {
    const events = await env.client({ cloudEvents: { source: SOURCE } });
    const stream = await newStream(events);
    for (const name of ["ce-id", "CE-Source", "ce-type", "ce-time", "ce-specversion", "ce-datacontenttype"]) {
      expect(
        await windshiftError(
          events.publish(`${stream}.a`, TestEventSchema, { text: "x" }, { headers: { [name]: "v" } }),
        ),
      ).toMatchObject({ code: "VALIDATION", details: { field: `headers.${name}` } });
    }
    await events.publish(
      `${stream}.a`,
      TestEventSchema,
      { text: "x" },
      { headers: { "ce-subject": "1001", "ce-tenant": "acme" } },
    );
    const stored = await events.getEvent(stream, 1);
    expect(stored.headers.cloudEvent).toMatchObject({ subject: "1001", extensions: { tenant: "acme" } });
  });

  it("exposes ce- headers a windshift publisher added itself, and none on plain events", async () => {
    const stream = await newStream(env.events);
    await env.events.publish(
      `${stream}.a`,
      TestEventSchema,
      { text: "x" },
      {
        headers: { "ce-specversion": "1.0", "ce-id": "e%201", "ce-source": "/legacy", "ce-type": "com.example.legacy" },
      },
    );
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "y" });
    const [withCe, plain] = await storedEvents(env, stream, { schema: TestEventSchema, atLeast: 2 });
    // WS-Data-Type wins over ce-type for the event's type; the attributes are there as sent.
    expect(withCe?.type).toBe("windshift.test.v1.TestEvent");
    expect(withCe?.headers.cloudEvent).toMatchObject({ id: "e 1", source: "/legacy", type: "com.example.legacy" });
    expect(withCe?.headers.idempotencyKey).toBeUndefined();
    expect(plain?.headers.cloudEvent).toBeUndefined();
  });
});
