/**
 * CloudEvents on NATS messages: header fixtures from the CloudEvents NATS
 * protocol binding (spec main branch, cloudevents/bindings/nats-protocol-binding.md)
 * and from sdk-go's JetStream binding (protocol/nats_jetstream/v3), read and
 * written byte for byte.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { clientDefaults } from "../../src/client/options.js";
import {
  decodeHeaderValue,
  encodeHeaderValue,
  isStructured,
  readBinary,
  readStructured,
} from "../../src/cloudevents/attributes.js";
import { binaryHeaders, cloudEventsDefaults, resolveCloudEvents } from "../../src/cloudevents/options.js";
import { decodeAs, eventHeaders, readEvent } from "../../src/consume/event-data.js";
import { headerMap, type RawHeaders } from "../../src/internal/headers.js";
import { createMemoryEvents } from "../../src/testing/index.js";
import { validationAt, windshiftError } from "./expect-error.js";

/** A header block as the binding's examples print it: `name: value` lines. */
function block(headers: RawHeaders): string {
  return headers.map(([name, value]) => `${name}: ${value}`).join("\n");
}

/** The binding's binary-mode example (§3.1.4). */
const SPEC_BINARY = `ce-specversion: 1.0
ce-type: com.example.someevent
ce-time: 2018-04-05T03:56:24Z
ce-id: 1234-1234-1234
ce-source: /mycontext/subcontext
ce-datacontenttype: application/json`;

function parseBlock(text: string): [string, string][] {
  return text.split("\n").map((line) => {
    const at = line.indexOf(": ");
    return [line.slice(0, at), line.slice(at + 2)];
  });
}

/** sdk-go's binaryReceiverMessage (message_test.go): what its tests receive. */
const SDK_GO_RECEIVED: [string, string][] = [
  ["ce-type", "com.example.FullEvent"],
  ["ce-source", "http://example.com/source"],
  ["ce-id", "full-event"],
  ["ce-time", "2020-03-21T12:34:56.78Z"],
  ["ce-specversion", "1.0"],
  ["ce-dataschema", "http://example.com/schema"],
  ["ce-datacontenttype", "text/json"],
  ["ce-subject", "receiverTopic"],
  ["ce-exta", "someext"],
];

/**
 * What sdk-go's WriteMsg writes for its FullEvent (write_message_test.go):
 * values with `fmt.Sprint`, no percent-encoding, a binary extension as Go
 * prints a byte slice.
 */
const SDK_GO_WRITTEN: [string, string][] = [
  ["ce-specversion", "1.0"],
  ["ce-type", "com.example.FullEvent"],
  ["ce-source", "http://example.com/source"],
  ["ce-id", "full-event"],
  ["ce-time", "2020-03-21T12:34:56.78Z"],
  ["ce-dataschema", "http://example.com/schema"],
  ["ce-subject", "topic"],
  ["ce-datacontenttype", "text/json"],
  ["ce-exbool", "true"],
  ["ce-exint", "42"],
  ["ce-exstring", "exstring"],
  ["ce-exbinary", "[0 1 2 3]"],
  ["ce-exurl", "http://example.com/source"],
  ["ce-extime", "2020-03-21T12:34:56.78Z"],
];

describe("header values (binding §3.1.3.2)", () => {
  it("percent-encodes the binding's example byte for byte", () => {
    expect(encodeHeaderValue("Euro \u20AC \u{1F600}")).toBe("Euro%20%E2%82%AC%20%F0%9F%98%80");
  });

  it("encodes space, double-quote, percent and controls, and nothing else of printable ASCII", () => {
    expect(encodeHeaderValue('a "b" 100%')).toBe("a%20%22b%22%20100%25");
    expect(encodeHeaderValue("tab\there\u007f")).toBe("tab%09here%7F");
    const printable = "!#$&'()*+,-./0123456789:;<=>?@ABCXYZ[\\]^_`abcxyz{|}~";
    expect(encodeHeaderValue(printable)).toBe(printable);
  });

  it("decodes upper- and lower-case escapes, and unnecessary ones", () => {
    expect(decodeHeaderValue("Euro%20%E2%82%AC%20%F0%9F%98%80")).toBe("Euro \u20AC \u{1F600}");
    expect(decodeHeaderValue("euro%20%e2%82%ac")).toBe("euro \u20AC");
    expect(decodeHeaderValue("%41%42C")).toBe("ABC");
  });

  it("rejects invalid UTF-8, such as the overlong %C0%A0", () => {
    expect(decodeHeaderValue("%C0%A0")).toBeUndefined();
    expect(decodeHeaderValue("%FF")).toBeUndefined();
  });

  it("unquotes a double-quoted value (older senders) before percent-decoding", () => {
    expect(decodeHeaderValue('"a \\"quoted\\" value%21"')).toBe('a "quoted" value!');
  });

  it("round-trips any string", () => {
    for (const s of ["", "plain", "%", "%%20", "a b\u00e9\u{1F600}\r\n", '"x"']) {
      expect(decodeHeaderValue(encodeHeaderValue(s))).toBe(s);
    }
  });
});

describe("writing binary mode", () => {
  it("writes the binding's example header block byte for byte (type and source from the example)", () => {
    const settings = resolveCloudEvents({ source: "/mycontext/subcontext" });
    if (settings === undefined) throw new Error("no settings");
    const headers = binaryHeaders(settings, "1234-1234-1234", "com.example.someevent", "2018-04-05T03:56:24Z");
    // windshift's order and content type; the example's lines otherwise.
    expect(block(headers)).toBe(
      [
        "ce-specversion: 1.0",
        "ce-id: 1234-1234-1234",
        "ce-source: /mycontext/subcontext",
        "ce-type: com.example.someevent",
        "ce-time: 2018-04-05T03:56:24Z",
        "ce-datacontenttype: application/protobuf",
      ].join("\n"),
    );
    const spec = new Map(parseBlock(SPEC_BINARY));
    for (const [name, value] of headers) {
      if (name !== "ce-datacontenttype") expect(value).toBe(spec.get(name));
    }
  });

  it("writes the sdk-go fixture's dataschema, and percent-encodes what sdk-go would send raw", () => {
    const settings = resolveCloudEvents({
      source: "http://example.com/source",
      dataschema: "http://example.com/schema",
    });
    if (settings === undefined) throw new Error("no settings");
    const headers = binaryHeaders(settings, "full-event", "windshift.test.v1.TestEvent", "2020-03-21T12:34:56.780Z");
    const written = new Map(SDK_GO_WRITTEN);
    expect(headers.filter(([name]) => ["ce-source", "ce-dataschema", "ce-specversion"].includes(name))).toEqual([
      ["ce-specversion", written.get("ce-specversion")],
      ["ce-source", written.get("ce-source")],
      ["ce-dataschema", written.get("ce-dataschema")],
    ]);
    // sdk-go writes ids with fmt.Sprint, unencoded; the binding (and windshift) encode them.
    const spaced = binaryHeaders(settings, "order 1001 \u20AC", "a.B", "2020-03-21T12:34:56.780Z");
    expect(spaced.find(([name]) => name === "ce-id")?.[1]).toBe("order%201001%20%E2%82%AC");
  });

  it("percent-encodes a percent sign in source", () => {
    expect(resolveCloudEvents({ source: "/a%2Fb" })?.source).toBe("/a%252Fb");
  });
});

describe("the cloudEvents option", () => {
  it("is off by default, with frozen defaults of its own", () => {
    expect(clientDefaults.cloudEvents).toBeUndefined();
    expect(resolveCloudEvents(undefined)).toBeUndefined();
    expect(Object.isFrozen(cloudEventsDefaults)).toBe(true);
    expect(cloudEventsDefaults).toEqual({ source: undefined, dataschema: undefined });
  });

  it("needs a non-empty URI-reference as source", () => {
    for (const source of [undefined, "", "has space", 'quote"', "\u00e9", 7, "x".repeat(1_025)]) {
      expect(() => resolveCloudEvents({ source })).toThrow(validationAt("cloudEvents.source"));
    }
    expect(resolveCloudEvents({ source: "/orders-service" })).toEqual({
      source: "/orders-service",
      dataschema: undefined,
    });
    expect(resolveCloudEvents({ source: "urn:example:orders" })?.source).toBe("urn:example:orders");
  });

  it("needs an absolute URI as dataschema", () => {
    for (const dataschema of ["/relative", "", "a b", 1]) {
      expect(() => resolveCloudEvents({ source: "/s", dataschema })).toThrow(validationAt("cloudEvents.dataschema"));
    }
    expect(resolveCloudEvents({ source: "/s", dataschema: "https://buf.build/acme/orders" })?.dataschema).toBe(
      "https://buf.build/acme/orders",
    );
  });

  it("refuses unknown keys and non-objects, at client creation", () => {
    expect(() => createMemoryEvents({ cloudEvents: { source: "/s", sorce: "/t" } as never })).toThrow(
      validationAt("cloudEvents.sorce"),
    );
    expect(() => createMemoryEvents({ cloudEvents: "/s" as never })).toThrow(validationAt("cloudEvents"));
    expect(() => createMemoryEvents({ cloudEvents: {} as never })).toThrow(validationAt("cloudEvents.source"));
  });
});

describe("reading binary mode", () => {
  it("reads the binding's example as a CloudEvent and a windshift event", () => {
    const headers = headerMap(parseBlock(SPEC_BINARY));
    const view = readEvent(headers, new Uint8Array([1, 2]));
    expect(view.type).toBe("com.example.someevent");
    expect(view.cloudEvent).toEqual({
      mode: "binary",
      specversion: "1.0",
      id: "1234-1234-1234",
      source: "/mycontext/subcontext",
      type: "com.example.someevent",
      time: "2018-04-05T03:56:24Z",
      datacontenttype: "application/json",
      dataschema: undefined,
      subject: undefined,
      extensions: {},
    });
    const parsed = eventHeaders(headers, view);
    expect(parsed.occurredAt).toEqual(new Date("2018-04-05T03:56:24Z"));
    expect(parsed.idempotencyKey).toBe("1234-1234-1234");
    expect(parsed.cloudEvent).toBe(view.cloudEvent);
    expect(view.payload).toEqual(new Uint8Array([1, 2]));
  });

  it("reads what sdk-go's tests receive, extensions included", () => {
    expect(readBinary(headerMap(SDK_GO_RECEIVED))).toEqual({
      mode: "binary",
      specversion: "1.0",
      id: "full-event",
      source: "http://example.com/source",
      type: "com.example.FullEvent",
      time: "2020-03-21T12:34:56.78Z",
      datacontenttype: "text/json",
      dataschema: "http://example.com/schema",
      subject: "receiverTopic",
      extensions: { exta: "someext" },
    });
    const headers = headerMap(SDK_GO_RECEIVED);
    expect(eventHeaders(headers, readEvent(headers, new Uint8Array())).occurredAt).toEqual(
      new Date("2020-03-21T12:34:56.780Z"),
    );
  });

  it("reads what sdk-go writes, its binary extension as Go printed it", () => {
    const ce = readBinary(headerMap(SDK_GO_WRITTEN));
    expect(ce?.extensions).toEqual({
      exbool: "true",
      exint: "42",
      exstring: "exstring",
      exbinary: "[0 1 2 3]",
      exurl: "http://example.com/source",
      extime: "2020-03-21T12:34:56.78Z",
    });
    expect(ce?.subject).toBe("topic");
  });

  it("takes datacontenttype from Content-Type when ce-datacontenttype is missing (as sdk-go reads it)", () => {
    const headers: [string, string][] = [
      ...SDK_GO_RECEIVED.filter(([n]) => n !== "ce-datacontenttype"),
      ["Content-Type", "application/json"],
    ];
    expect(readBinary(headerMap(headers))?.datacontenttype).toBe("application/json");
  });

  it("percent-decodes values and matches header names case-insensitively", () => {
    const ce = readBinary(
      headerMap([
        ["CE-SpecVersion", "1.0"],
        ["Ce-Id", "order%201001%20%E2%82%AC"],
        ["ce-source", "/a%252Fb"],
        ["ce-type", "a.B"],
        ["ce-myext", "x%20y"],
      ]),
    );
    expect([ce?.id, ce?.source, ce?.extensions]).toEqual(["order 1001 \u20AC", "/a%2Fb", { myext: "x y" }]);
  });

  it("is not a CloudEvent without specversion, id, source or type, or with an invalid one", () => {
    const full = new Map(SDK_GO_RECEIVED);
    for (const name of ["ce-specversion", "ce-id", "ce-source", "ce-type"]) {
      const headers = headerMap([...full].filter(([n]) => n !== name));
      expect(readEvent(headers, new Uint8Array()).cloudEvent).toBeUndefined();
    }
    const overlong = SDK_GO_RECEIVED.map(([n, v]): [string, string] => [n, n === "ce-id" ? "%C0%A0" : v]);
    expect(readBinary(headerMap(overlong))).toBeUndefined();
  });

  it("keeps windshift's own headers first when both are there", () => {
    const headers = headerMap([
      ["WS-Data-Type", "windshift.test.v1.TestEvent"],
      ["WS-Published-Time", "2024-01-02T03:04:05.678Z"],
      ...SDK_GO_RECEIVED,
    ]);
    const view = readEvent(headers, new Uint8Array());
    const parsed = eventHeaders(headers, view);
    expect(view.type).toBe("windshift.test.v1.TestEvent");
    expect(parsed.occurredAt).toEqual(new Date("2024-01-02T03:04:05.678Z"));
    // A windshift event without Nats-Msg-Id has no idempotency key, whatever its ce-id.
    expect(parsed.idempotencyKey).toBeUndefined();
    expect(parsed.cloudEvent?.id).toBe("full-event");
  });

  it("is no CloudEvent for a plain windshift event", () => {
    const headers = headerMap([["WS-Data-Type", "a.B"]]);
    const view = readEvent(headers, new Uint8Array([0x7b]));
    expect(view.cloudEvent).toBeUndefined();
    expect(eventHeaders(headers, view).cloudEvent).toBeUndefined();
  });
});

describe("reading structured mode", () => {
  const message = create(TestEventSchema, { text: "hi", number: 5n, tags: ["a"] });
  const envelope = (o: Record<string, unknown>): Uint8Array =>
    new TextEncoder().encode(
      JSON.stringify({
        specversion: "1.0",
        type: "windshift.test.v1.TestEvent",
        source: "/orders-service",
        id: "evt-1",
        time: "2024-01-02T03:04:05.678901234+01:00",
        ...o,
      }),
    );
  const structured = headerMap([["content-type", "application/cloudevents+json; charset=utf-8"]]);

  it("knows the structured content types, not the batch one", () => {
    expect(isStructured("application/cloudevents+json")).toBe(true);
    expect(isStructured("Application/CloudEvents+JSON; charset=utf-8")).toBe(true);
    expect(isStructured("application/cloudevents")).toBe(true);
    expect(isStructured("application/cloudevents-batch+json")).toBe(false);
    expect(isStructured("application/json")).toBe(false);
    expect(isStructured(undefined)).toBe(false);
  });

  it("decodes data_base64 as Protobuf binary", () => {
    const payload = envelope({
      datacontenttype: "application/protobuf",
      data_base64: Buffer.from(toBinary(TestEventSchema, message)).toString("base64"),
      subject: "1001",
      tenant: "acme",
      priority: 3,
    });
    const view = readEvent(structured, payload);
    expect(view.type).toBe("windshift.test.v1.TestEvent");
    expect(view.json).toBeUndefined();
    expect(decodeAs(TestEventSchema, { ...view, id: 1 })).toEqual(message);
    const parsed = eventHeaders(structured, view);
    expect(parsed.occurredAt).toEqual(new Date("2024-01-02T02:04:05.678Z"));
    expect(parsed.idempotencyKey).toBe("evt-1");
    expect(parsed.cloudEvent).toMatchObject({
      mode: "structured",
      subject: "1001",
      datacontenttype: "application/protobuf",
      extensions: { tenant: "acme", priority: "3" },
    });
  });

  it("decodes JSON data with fromJson; the data's JSON text is what it decodes", () => {
    const view = readEvent(
      structured,
      envelope({ datacontenttype: "application/json", data: { text: "hi", number: "5", tags: ["a"] } }),
    );
    expect(view.json).toEqual({ text: "hi", number: "5", tags: ["a"] });
    expect(new TextDecoder().decode(view.payload)).toBe('{"text":"hi","number":"5","tags":["a"]}');
    expect(decodeAs(TestEventSchema, { ...view, id: 1 })).toEqual(message);
  });

  it("fails JSON data that does not fit the schema with INVALID_DATA", () => {
    const view = readEvent(structured, envelope({ data: { text: 5 } }));
    expect(() => decodeAs(TestEventSchema, { ...view, id: 9 })).toThrow(
      windshiftError("INVALID_DATA", { details: expect.objectContaining({ id: 9 }) }),
    );
  });

  it("takes a string of a non-JSON content type as the data itself", () => {
    const view = readEvent(structured, envelope({ datacontenttype: "text/plain", data: "hello" }));
    expect(new TextDecoder().decode(view.payload)).toBe("hello");
    expect(view.json).toBeUndefined();
  });

  it("reads an envelope sent without headers (sdk-go's structured mode, and NATS before 2.2)", () => {
    const view = readEvent(headerMap([]), envelope({ data_base64: "" }));
    expect(view.cloudEvent?.mode).toBe("structured");
    expect(view.payload).toEqual(new Uint8Array());
  });

  it("is no CloudEvent when the envelope misses a required attribute, or is not JSON", () => {
    expect(readStructured(envelope({ id: undefined }))).toBeUndefined();
    expect(readEvent(structured, new TextEncoder().encode("{not json")).cloudEvent).toBeUndefined();
    // sdk-go's structuredReceiverMessage fixture keys its JSON with the header names ("ce-type"…),
    // which the JSON event format does not: windshift reads it as no CloudEvent.
    const sdkGoFixture = new TextEncoder().encode(JSON.stringify(Object.fromEntries(SDK_GO_RECEIVED)));
    expect(readEvent(headerMap([]), sdkGoFixture).cloudEvent).toBeUndefined();
  });
});
