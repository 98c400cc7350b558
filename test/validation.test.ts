import { create, createRegistry, toBinary } from "@bufbuild/protobuf";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { beforeAll, describe, expect, it } from "vitest";
import { OtherEventSchema, TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import {
  createEvents,
  ErrorCode,
  type Event,
  type Events,
  isValidName,
  isValidSubject,
  WindshiftError,
} from "../src/index.js";
import { nextEvent, uniqueName, useServer } from "./helpers.js";

// Every bad input must fail with a typed error before anything reaches the
// server. "Nothing sent" is checked twice: the client under test has its own
// connection whose outgoing message count must not move, and the server's own
// view (streams, consumers, stored messages, deliveries) must not change.

const env = useServer();

/** The connection and client under test; nothing else publishes on it. */
let probe: NatsConnection;
let events: Events;
/** Reads the server independently of windshift. */
let jsm: JetStreamManager;
/** An empty stream capturing `${pubStream}.>`, for publish cases. */
let pubStream: string;
/** A stream holding one event, with a durable consumer that never saw it. */
let subStream: string;
const subConsumer = "c";

beforeAll(async () => {
  probe = await env.connect();
  events = createEvents(probe);
  jsm = await jetstreamManager(env.nc);
  pubStream = uniqueName("pub");
  await env.events.ensureStream(pubStream, { subjects: [`${pubStream}.>`] });
  subStream = uniqueName("sub");
  await env.events.ensureStream(subStream, { subjects: [`${subStream}.>`] });
  await env.events.ensureConsumer(subStream, { name: subConsumer, from: { start: true } });
  await env.events.publish(`${subStream}.a`, TestEventSchema, { text: "waiting" });
});

interface Snapshot {
  streams: number;
  consumers: number;
  pubMessages: number;
  subDelivered: number;
  subWaiting: number;
  subAckPending: number;
  outMsgs: number;
}

async function snapshot(): Promise<Snapshot> {
  const account = await jsm.getAccountInfo();
  const pub = await jsm.streams.info(pubStream);
  const sub = await jsm.consumers.info(subStream, subConsumer);
  return {
    streams: account.streams,
    consumers: account.consumers,
    pubMessages: pub.state.messages,
    subDelivered: sub.delivered.consumer_seq,
    subWaiting: sub.num_waiting,
    subAckPending: sub.num_ack_pending,
    outMsgs: probe.stats().outMsgs,
  };
}

/** Runs `call`, which must return a promise (not throw) that rejects with `code`. */
async function expectRejection(call: () => unknown, code: ErrorCode, mentions?: string): Promise<WindshiftError> {
  let result: unknown;
  expect(() => {
    result = call();
  }, "an async API must reject, not throw synchronously").not.toThrow();
  expect(result).toBeInstanceOf(Promise);
  const err = await (result as Promise<unknown>).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call succeeded").toBeInstanceOf(WindshiftError);
  const ws = err as WindshiftError;
  expect(ws.code, ws.message).toBe(code);
  expect(ws.name).toBe("WindshiftError");
  expect(ws.message.length).toBeGreaterThan(0);
  if (mentions !== undefined) expect(ws.message).toContain(mentions);
  return ws;
}

interface Case {
  name: string;
  /** `stream` is a fresh valid stream name (unique per case). */
  run: (e: Events, stream: string) => unknown;
  code?: ErrorCode;
  /** A word the message must contain (the offending option, usually). */
  mentions?: string;
}

async function expectNothingSent(c: Case): Promise<void> {
  const before = await snapshot();
  await expectRejection(() => c.run(events, uniqueName()), c.code ?? ErrorCode.Validation, c.mentions);
  expect(await snapshot()).toEqual(before);
}

/** A value as it reads in a test name: strings quoted, so "1" and 1 differ. */
function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

const BAD_NAMES: [string, unknown][] = [
  ["empty", ""],
  ["with a dot", "a.b"],
  ["with a space", "a b"],
  ["a star", "*"],
  ["a gt", ">"],
  ["256 characters", "a".repeat(256)],
  ["a number", 42],
  ["null", null],
  ["with a slash", "a/b"],
];

const BAD_SUBJECTS: [string, unknown][] = [
  ["empty token", "a..b"],
  ["> not last", "a.>.b"],
  ["leading dot", ".a"],
  ["trailing dot", "a."],
  ["space", "a b"],
  ["star inside a token", "a*"],
  ["empty", ""],
  ["a number", 7],
];

const BAD_DURATIONS: [string, unknown][] = [
  ["negative", -1],
  ["NaN", Number.NaN],
  ["Infinity", Number.POSITIVE_INFINITY],
  ["not whole", 1.5],
  ["over 9e12", 9_000_000_000_001],
  ["a string", "1000"],
];

const BAD_RETRIES: [string, unknown][] = [
  ["zero maxAttempts", { maxAttempts: 0 }],
  ["fractional maxAttempts", { maxAttempts: 1.5 }],
  ["NaN multiplier", { multiplier: Number.NaN }],
  ["multiplier below 1", { multiplier: 0.5 }],
  ["unknown key", { foo: 1 }],
  ["p-retry's minTimeout", { minTimeout: 10 }],
  ["negative initialDelayMs", { initialDelayMs: -1 }],
  ["string maxDelayMs", { maxDelayMs: "1s" }],
  ["maxDelayMs below initialDelayMs", { initialDelayMs: 100, maxDelayMs: 10 }],
  ["jitter above 1", { jitter: 2 }],
  ["negative maxElapsedMs", { maxElapsedMs: -1 }],
  ["a string", "yes"],
  ["a number", 3],
];

describe("createEvents", () => {
  const cases: [string, () => unknown][] = [
    ["null connection", () => createEvents(null as never)],
    ["undefined connection", () => createEvents(undefined as never)],
    ["a URL string", () => createEvents("nats://127.0.0.1:4222" as never)],
    ["a plain object", () => createEvents({} as never)],
    ["an unknown option", () => createEvents(probe, { tracer: {} } as never)],
    ["options that are not an object", () => createEvents(probe, "verbose" as never)],
    ["a logger without methods", () => createEvents(probe, { logger: {} as never })],
    ["a logger missing error()", () => createEvents(probe, { logger: { debug() {}, info() {}, warn() {} } as never })],
    ["a logger that is a string", () => createEvents(probe, { logger: "console" as never })],
  ];
  it.each(cases)("rejects %s", async (_, call) => {
    const before = await snapshot();
    let err: unknown;
    try {
      call();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WindshiftError);
    expect((err as WindshiftError).code).toBe(ErrorCode.Validation);
    expect(await snapshot()).toEqual(before);
  });

  it("accepts a connection with console as the logger (control)", () => {
    expect(() => createEvents(probe, { logger: console })).not.toThrow();
  });
});

describe("ensureStream", () => {
  const cases: Case[] = [
    ...BAD_NAMES.map(
      ([what, name]): Case => ({
        name: `name ${what}`,
        run: (e) => e.ensureStream(name as never, { subjects: ["ok.>"] }),
        mentions: "stream",
      }),
    ),
    { name: "no options at all", run: (e, s) => e.ensureStream(s), mentions: "subjects" },
    { name: "no subjects and no sources", run: (e, s) => e.ensureStream(s, {}), mentions: "subjects" },
    { name: "empty subjects and sources", run: (e, s) => e.ensureStream(s, { subjects: [], sources: [] }) },
    ...BAD_SUBJECTS.map(
      ([what, subject]): Case => ({
        name: `subject ${what}`,
        run: (e, s) => e.ensureStream(s, { subjects: [`${s}.ok`, subject as never] }),
        mentions: "subjects",
      }),
    ),
    { name: "subjects not an array", run: (e, s) => e.ensureStream(s, { subjects: `${s}.>` as never }) },
    {
      name: "a duplicate subject",
      run: (e, s) => e.ensureStream(s, { subjects: [`${s}.a`, `${s}.b`, `${s}.a`] }),
      mentions: "subjects",
    },
    ...(["maxAgeMs", "deduplicationWindowMs"] as const).flatMap((key) =>
      BAD_DURATIONS.map(
        ([what, value]): Case => ({
          name: `${key} ${what}`,
          run: (e, s) => e.ensureStream(s, { subjects: [`${s}.>`], [key]: value as never }),
          mentions: key,
        }),
      ),
    ),
    {
      name: "deduplicationWindowMs 0",
      run: (e, s) => e.ensureStream(s, { subjects: [`${s}.>`], deduplicationWindowMs: 0 }),
      mentions: "deduplicationWindowMs",
    },
    ...(["maxEvents", "maxEventsPerSubject", "maxBytes", "maxEventSize"] as const).flatMap((key) =>
      ([0, -1, 1.5, Number.NaN, "10"] as const).map(
        (value): Case => ({
          name: `${key} ${show(value)}`,
          run: (e, s) => e.ensureStream(s, { subjects: [`${s}.>`], [key]: value as never }),
          mentions: key,
        }),
      ),
    ),
    ...[0, 6, 1.5, -1, "1"].map(
      (value): Case => ({
        name: `replicas ${show(value)}`,
        run: (e, s) => e.ensureStream(s, { subjects: [`${s}.>`], replicas: value as never }),
        mentions: "replicas",
      }),
    ),
    ...["NEW", "keep", "", 1].map(
      (value): Case => ({
        name: `discardPolicy ${show(value)}`,
        run: (e, s) => e.ensureStream(s, { subjects: [`${s}.>`], discardPolicy: value as never }),
        mentions: "discardPolicy",
      }),
    ),
    ...["disk", "Memory", "", 0].map(
      (value): Case => ({
        name: `storage ${show(value)}`,
        run: (e, s) => e.ensureStream(s, { subjects: [`${s}.>`], storage: value as never }),
        mentions: "storage",
      }),
    ),
    {
      name: "discardNewPerSubject alone",
      run: (e, s) => e.ensureStream(s, { subjects: [`${s}.>`], discardNewPerSubject: true }),
      mentions: "discardNewPerSubject",
    },
    {
      name: "discardNewPerSubject without maxEventsPerSubject",
      run: (e, s) => e.ensureStream(s, { subjects: [`${s}.>`], discardPolicy: "new", discardNewPerSubject: true }),
      mentions: "discardNewPerSubject",
    },
    {
      name: 'discardNewPerSubject with discardPolicy "old"',
      run: (e, s) =>
        e.ensureStream(s, {
          subjects: [`${s}.>`],
          discardPolicy: "old",
          maxEventsPerSubject: 1,
          discardNewPerSubject: true,
        }),
      mentions: "discardNewPerSubject",
    },
    {
      name: "discardNewPerSubject not a boolean",
      run: (e, s) => e.ensureStream(s, { subjects: [`${s}.>`], discardNewPerSubject: "yes" as never }),
      mentions: "discardNewPerSubject",
    },
    {
      name: "an unknown option (typo)",
      run: (e, s) => e.ensureStream(s, { subjects: [`${s}.>`], maxAge: 1000 } as never),
      mentions: "maxAge",
    },
    {
      name: "a JetStream snake_case option",
      run: (e, s) => e.ensureStream(s, { subjects: [`${s}.>`], max_msgs: 10 } as never),
      mentions: "max_msgs",
    },
    { name: "options that are a string", run: (e, s) => e.ensureStream(s, "orders.>" as never) },
    { name: "options that are an array", run: (e, s) => e.ensureStream(s, [`${s}.>`] as never) },
    {
      name: "a signal that is not an AbortSignal",
      run: (e, s) => e.ensureStream(s, { subjects: [`${s}.>`], signal: { aborted: false } as never }),
      mentions: "signal",
    },
    ...BAD_NAMES.map(
      ([what, name]): Case => ({
        name: `source stream ${what}`,
        run: (e, s) => e.ensureStream(s, { sources: [{ stream: name as never }] }),
        mentions: "sources",
      }),
    ),
    ...(
      [
        ["{ end: true }", { end: true }],
        ["two keys", { start: true, id: 2 }],
        ["id 0", { id: 0 }],
        ["id -1", { id: -1 }],
        ["id 1.5", { id: 1.5 }],
        ["id as a string", { id: "3" }],
        ["an invalid time", { time: new Date(Number.NaN) }],
        ["a time string", { time: "2024-01-01T00:00:00Z" }],
        ["start: false", { start: false }],
        ["empty", {}],
        ["a string", "start"],
        ["null", null],
      ] as [string, unknown][]
    ).map(
      ([what, from]): Case => ({
        name: `source from ${what}`,
        run: (e, s) => e.ensureStream(s, { sources: [{ stream: uniqueName("src"), from: from as never }] }),
        mentions: "from",
      }),
    ),
    {
      name: "a source with a bad subject",
      run: (e, s) => e.ensureStream(s, { sources: [{ stream: uniqueName("src"), subjects: ["a..b"] }] }),
      mentions: "subjects",
    },
    {
      name: "a source with an unknown key",
      run: (e, s) => e.ensureStream(s, { sources: [{ stream: uniqueName("src"), filter: "a.>" } as never] }),
      mentions: "filter",
    },
    { name: "a source that is a string", run: (e, s) => e.ensureStream(s, { sources: ["other" as never] }) },
    { name: "sources not an array", run: (e, s) => e.ensureStream(s, { sources: { stream: "x" } as never }) },
    {
      name: "a good source next to a bad one",
      run: (e, s) => e.ensureStream(s, { sources: [{ stream: uniqueName("src") }, { stream: "a.b" }] }),
      mentions: "sources[1]",
    },
  ];
  it.each(cases.map((c) => [c.name, c] as const))("rejects %s", async (_, c) => {
    await expectNothingSent(c);
  });
});

describe("ensureConsumer", () => {
  // Cases run against the existing stream (`subStream`) so that a consumer
  // created by mistake would show on the server.
  const on = (): string => subStream;
  const cases: Case[] = [
    ...BAD_NAMES.map(
      ([what, name]): Case => ({
        name: `stream name ${what}`,
        run: (e) => e.ensureConsumer(name as never, { name: "ok" }),
        mentions: "stream",
      }),
    ),
    ...BAD_NAMES.map(
      ([what, name]): Case => ({
        name: `consumer name ${what}`,
        run: (e) => e.ensureConsumer(on(), { name: name as never }),
        mentions: "name",
      }),
    ),
    ...BAD_SUBJECTS.map(
      ([what, subject]): Case => ({
        name: `subject ${what}`,
        run: (e) => e.ensureConsumer(on(), { name: "ok", subjects: [subject as never] }),
        mentions: "subjects",
      }),
    ),
    {
      name: "a duplicate subject",
      run: (e) => e.ensureConsumer(on(), { name: "ok", subjects: [`${on()}.a`, `${on()}.a`] }),
      mentions: "subjects",
    },
    { name: "subjects not an array", run: (e) => e.ensureConsumer(on(), { subjects: `${on()}.a` as never }) },
    ...(
      [
        ["start: false", { start: false }],
        ["end: false", { end: false }],
        ["start and end", { start: true, end: true }],
        ["end and id", { end: true, id: 3 }],
        ["id 0", { id: 0 }],
        ["id -1", { id: -1 }],
        ["id 1.5", { id: 1.5 }],
        ["id NaN", { id: Number.NaN }],
        ["id as a string", { id: "1" }],
        ["an invalid time", { time: new Date(Number.NaN) }],
        ["a time number", { time: Date.now() }],
        ["empty", {}],
        ["an unknown key", { seq: 1 }],
        ["a string", "end"],
        ["a number", 1],
        ["null", null],
      ] as [string, unknown][]
    ).map(
      ([what, from]): Case => ({
        name: `from ${what}`,
        run: (e) => e.ensureConsumer(on(), { name: "ok", from: from as never }),
        mentions: "from",
      }),
    ),
    ...[0, ...BAD_DURATIONS.map(([, d]) => d)].map(
      (value): Case => ({
        name: `processingTimeoutMs ${show(value)}`,
        run: (e) => e.ensureConsumer(on(), { name: "ok", processingTimeoutMs: value as never }),
        mentions: "processingTimeoutMs",
      }),
    ),
    ...[0, ...BAD_DURATIONS.map(([, d]) => d)].map(
      (value): Case => ({
        name: `inactiveThresholdMs ${show(value)}`,
        run: (e) => e.ensureConsumer(on(), { inactiveThresholdMs: value as never }),
        mentions: "inactiveThresholdMs",
      }),
    ),
    ...(["maxDeliveryAttempts", "maxUnsettledEvents"] as const).flatMap((key) =>
      [0, -1, 1.5, Number.NaN, "5"].map(
        (value): Case => ({
          name: `${key} ${show(value)}`,
          run: (e) => e.ensureConsumer(on(), { name: "ok", [key]: value as never }),
          mentions: key,
        }),
      ),
    ),
    {
      name: "an unknown option",
      run: (e) => e.ensureConsumer(on(), { durable: "ok" } as never),
      mentions: "durable",
    },
    { name: "options that are a string", run: (e) => e.ensureConsumer(on(), "ok" as never) },
    {
      name: "a signal that is not an AbortSignal",
      run: (e) => e.ensureConsumer(on(), { name: "ok", signal: "abort" as never }),
      mentions: "signal",
    },
  ];
  it.each(cases.map((c) => [c.name, c] as const))("rejects %s", async (_, c) => {
    await expectNothingSent(c);
  });
});

describe("publish", () => {
  const subject = (): string => `${pubStream}.ok`;
  const ok = { text: "x" };
  const cases: Case[] = [
    {
      name: "a subject with *",
      run: (e) => e.publish(`${pubStream}.*`, TestEventSchema, ok),
      mentions: "subject",
    },
    {
      name: "a subject with >",
      run: (e) => e.publish(`${pubStream}.>`, TestEventSchema, ok),
      mentions: "subject",
    },
    ...BAD_SUBJECTS.map(
      ([what, s]): Case => ({
        name: `subject ${what}`,
        run: (e) => e.publish(s as never, TestEventSchema, ok),
        mentions: "subject",
      }),
    ),
    { name: "an undefined subject", run: (e) => e.publish(undefined as never, TestEventSchema, ok) },
    ...(
      [
        ["null", null],
        ["undefined", undefined],
        ["a plain object", {}],
        ["a type name", "windshift.test.v1.TestEvent"],
        ["an enum-like descriptor", { kind: "enum", typeName: "windshift.test.v1.TestEvent" }],
        ["a message instead of a schema", create(TestEventSchema)],
      ] as [string, unknown][]
    ).map(
      ([what, schema]): Case => ({
        name: `schema ${what}`,
        run: (e) => e.publish(subject(), schema as never, ok as never),
        mentions: "schema",
      }),
    ),
    ...(
      [
        ["null", null],
        ["undefined", undefined],
        ["a string", "hello"],
        ["a number", 42],
        ["an array", [1, 2]],
      ] as [string, unknown][]
    ).map(
      ([what, data]): Case => ({
        name: `data ${what}`,
        run: (e) => e.publish(subject(), TestEventSchema, data as never),
        mentions: "data",
      }),
    ),
    {
      name: "data of another message type",
      run: (e) => e.publish(subject(), TestEventSchema, create(OtherEventSchema, { name: "x" }) as never),
      code: ErrorCode.InvalidData,
      mentions: "windshift.test.v1.OtherEvent",
    },
    {
      name: "data the schema cannot encode (int64 from a word)",
      run: (e) => e.publish(subject(), TestEventSchema, { number: "lots" } as never),
      code: ErrorCode.InvalidData,
    },
    {
      name: "data the schema cannot encode (int64 from 1.5)",
      run: (e) => e.publish(subject(), TestEventSchema, { number: 1.5 } as never),
      code: ErrorCode.InvalidData,
    },
    ...(
      [
        ["empty", ""],
        ["a number", 5],
        ["with a newline", "a\nb"],
        ["with a carriage return", "a\rb"],
        ["null", null],
      ] as [string, unknown][]
    ).map(
      ([what, key]): Case => ({
        name: `idempotencyKey ${what}`,
        run: (e) => e.publish(subject(), TestEventSchema, ok, { idempotencyKey: key as never }),
        mentions: "idempotencyKey",
      }),
    ),
    ...[-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "0"].map(
      (value): Case => ({
        name: `expectedLastId ${show(value)}`,
        run: (e) => e.publish(subject(), TestEventSchema, ok, { expectedLastId: value as never }),
        mentions: "expectedLastId",
      }),
    ),
    ...(
      [
        ["an invalid Date", new Date(Number.NaN)],
        ["a string", "2024-01-01T00:00:00Z"],
        ["a number", Date.now()],
        ["null", null],
      ] as [string, unknown][]
    ).map(
      ([what, value]): Case => ({
        name: `occurredAt ${what}`,
        run: (e) => e.publish(subject(), TestEventSchema, ok, { occurredAt: value as never }),
        mentions: "occurredAt",
      }),
    ),
    ...[0, ...BAD_DURATIONS.map(([, d]) => d)].map(
      (value): Case => ({
        name: `timeoutMs ${show(value)}`,
        run: (e) => e.publish(subject(), TestEventSchema, ok, { timeoutMs: value as never }),
        mentions: "timeoutMs",
      }),
    ),
    ...BAD_RETRIES.map(
      ([what, retry]): Case => ({
        name: `retry ${what}`,
        run: (e) => e.publish(subject(), TestEventSchema, ok, { retry: retry as never }),
        mentions: "retry",
      }),
    ),
    ...(
      [
        ["a plain object", { aborted: false }],
        ["a controller", new AbortController()],
        ["a string", "stop"],
      ] as [string, unknown][]
    ).map(
      ([what, signal]): Case => ({
        name: `signal ${what}`,
        run: (e) => e.publish(subject(), TestEventSchema, ok, { signal: signal as never }),
        mentions: "signal",
      }),
    ),
    {
      name: "an unknown option",
      run: (e) => e.publish(subject(), TestEventSchema, ok, { msgId: "x" } as never),
      mentions: "msgId",
    },
    { name: "options that are a string", run: (e) => e.publish(subject(), TestEventSchema, ok, "x" as never) },
  ];
  it.each(cases.map((c) => [c.name, c] as const))("rejects %s", async (_, c) => {
    await expectNothingSent(c);
  });

  it("rejects a payload one byte over the server's max_payload", async () => {
    const maxPayload = probe.info?.max_payload;
    expect(maxPayload).toBeGreaterThan(0);
    const target = (maxPayload as number) + 1;
    // field 3 (bytes): one tag byte, a 3-byte length varint (for 16 KiB..2 MiB), then the bytes.
    const blob = new Uint8Array(target - 1 - 3).fill(7);
    expect(toBinary(TestEventSchema, create(TestEventSchema, { blob })).length).toBe(target);
    await expectNothingSent({
      name: "oversize",
      run: (e) => e.publish(`${pubStream}.big`, TestEventSchema, { blob }),
      mentions: "data",
    });
  });

  it("rejects with ABORTED, sending nothing, when the signal is already aborted", async () => {
    const ac = new AbortController();
    ac.abort(new Error("stop"));
    await expectNothingSent({
      name: "aborted",
      run: (e) => e.publish(`${pubStream}.ok`, TestEventSchema, ok, { signal: ac.signal }),
      code: ErrorCode.Aborted,
    });
  });

  it("accepts what the rejections above are measured against (control)", async () => {
    // The same stream and client do store a valid event, so the zero counts above mean something.
    const before = await snapshot();
    const published = await events.publish(`${pubStream}.ok`, TestEventSchema, ok, {
      idempotencyKey: uniqueName("key"),
      expectedLastId: before.pubMessages,
      occurredAt: new Date(),
      timeoutMs: 5_000,
      retry: { maxAttempts: 1 },
    });
    expect(published.duplicate).toBe(false);
    const after = await snapshot();
    expect(after.pubMessages).toBe(before.pubMessages + 1);
    expect(after.outMsgs).toBeGreaterThan(before.outMsgs);
  });
});

describe("subscribe", () => {
  const registry = createRegistry(TestEventSchema, OtherEventSchema);
  const cases: Case[] = [
    ...BAD_NAMES.map(
      ([what, name]): Case => ({
        name: `stream name ${what}`,
        run: (e) => e.subscribe(name as never, subConsumer),
        mentions: "stream",
      }),
    ),
    ...BAD_NAMES.map(
      ([what, name]): Case => ({
        name: `consumer name ${what}`,
        run: (e) => e.subscribe(subStream, name as never),
        mentions: "consumer",
      }),
    ),
    {
      name: "schema and registry both",
      run: (e) => e.subscribe(subStream, subConsumer, { schema: TestEventSchema, registry } as never),
    },
    {
      name: "a schema that is not a schema",
      run: (e) => e.subscribe(subStream, subConsumer, { schema: {} as never }),
      mentions: "schema",
    },
    {
      name: "a registry that is not a registry",
      run: (e) => e.subscribe(subStream, subConsumer, { registry: [TestEventSchema] as never }),
      mentions: "registry",
    },
    ...[0, -1, 1.5, Number.NaN, "50"].map(
      (value): Case => ({
        name: `prefetch ${show(value)}`,
        run: (e) => e.subscribe(subStream, subConsumer, { prefetch: value as never }),
        mentions: "prefetch",
      }),
    ),
    ...["yes", 1, null].map(
      (value): Case => ({
        name: `autoPing ${show(value)}`,
        run: (e) => e.subscribe(subStream, subConsumer, { autoPing: value as never }),
        mentions: "autoPing",
      }),
    ),
    ...BAD_RETRIES.map(
      ([what, retry]): Case => ({
        name: `retry ${what}`,
        run: (e) => e.subscribe(subStream, subConsumer, { retry: retry as never }),
        mentions: "retry",
      }),
    ),
    {
      name: "a signal that is not an AbortSignal",
      run: (e) => e.subscribe(subStream, subConsumer, { signal: {} as never }),
      mentions: "signal",
    },
    {
      name: "an unknown option",
      run: (e) => e.subscribe(subStream, subConsumer, { batch: 10 } as never),
      mentions: "batch",
    },
    { name: "options that are a string", run: (e) => e.subscribe(subStream, subConsumer, "x" as never) },
  ];
  it.each(cases.map((c) => [c.name, c] as const))("rejects %s", async (_, c) => {
    await expectNothingSent(c);
  });
});

describe("unsupported JetStream features (nats-server 2.9)", () => {
  it("the test server is older than 2.10", () => {
    const [major, minor] = (probe.info?.version ?? "").split(".").map(Number);
    expect(major).toBe(2);
    expect(minor).toBeLessThan(10);
  });

  it("refuses a consumer with two subjects, naming 2.10", async () => {
    const before = await snapshot();
    const err = await expectRejection(
      () => events.ensureConsumer(subStream, { name: "two", subjects: [`${subStream}.a`, `${subStream}.b`] }),
      ErrorCode.UnsupportedFeature,
    );
    expect(err.message).toMatch(/2\.10/);
    expect(await snapshot()).toEqual(before);
  });

  it("refuses an ephemeral consumer with two subjects, naming 2.10", async () => {
    const before = await snapshot();
    const err = await expectRejection(
      () => events.ensureConsumer(subStream, { subjects: [`${subStream}.a`, `${subStream}.>`] }),
      ErrorCode.UnsupportedFeature,
    );
    expect(err.message).toMatch(/2\.10/);
    expect(await snapshot()).toEqual(before);
  });

  it("refuses a stream source with two subjects, naming 2.10", async () => {
    const before = await snapshot();
    const err = await expectRejection(
      () =>
        events.ensureStream(uniqueName(), {
          sources: [{ stream: pubStream, subjects: [`${pubStream}.a`, `${pubStream}.b`] }],
        }),
      ErrorCode.UnsupportedFeature,
    );
    expect(err.message).toMatch(/2\.10/);
    expect(await snapshot()).toEqual(before);
  });
});

describe("event settlement", () => {
  /** A delivered, unsettled event on a client with its own connection. */
  async function deliveredEvent(): Promise<{
    event: Event;
    conn: NatsConnection;
    stream: string;
    close: () => Promise<void>;
  }> {
    const stream = uniqueName("ev");
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await env.events.ensureConsumer(stream, { name: "c", from: { start: true } });
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "settle me" });
    const conn = await env.connect();
    const client = createEvents(conn);
    const sub = await client.subscribe(stream, "c", { schema: TestEventSchema, autoPing: false });
    const event = await nextEvent(sub[Symbol.asyncIterator]());
    return { event, conn, stream, close: () => sub.close() };
  }

  const rejectCases: [string, unknown][] = [
    ["delayMs and permanent", { delayMs: 10, permanent: true }],
    ["delayMs and decider", { delayMs: 10, decider: () => 5 }],
    ["permanent and decider", { permanent: true, decider: () => 5 }],
    ["all three", { delayMs: 10, permanent: false, decider: () => 5 }],
    ["negative delayMs", { delayMs: -1 }],
    ["NaN delayMs", { delayMs: Number.NaN }],
    ["fractional delayMs", { delayMs: 1.5 }],
    ["permanent not a boolean", { permanent: "yes" }],
    ["a decider that is not a function", { decider: 5 }],
    ["a decider returning NaN", { decider: () => Number.NaN }],
    ["a decider returning a string", { decider: () => "1000" }],
    ["a decider returning nothing", { decider: () => undefined }],
    ["an unknown option", { delay: 10 }],
    ["a bad retry", { retry: { maxAttempts: -1 } }],
    ["timeoutMs 0", { timeoutMs: 0 }],
    ["options that are a string", "later"],
  ];

  const settleCases: [string, unknown][] = [
    ["timeoutMs 0", { timeoutMs: 0 }],
    ["timeoutMs NaN", { timeoutMs: Number.NaN }],
    ...BAD_RETRIES.map(([what, retry]): [string, unknown] => [`retry ${what}`, { retry }]),
    ["a bad signal", { signal: {} }],
    ["an unknown option", { delayMs: 10 }],
  ];

  const all: [string, (e: Event) => unknown][] = [
    ...rejectCases.map(([what, o]): [string, (e: Event) => unknown] => [
      `reject with ${what}`,
      (e) => e.reject(o as never),
    ]),
    ...settleCases.map(([what, o]): [string, (e: Event) => unknown] => [`ack with ${what}`, (e) => e.ack(o as never)]),
    ...settleCases.map(([what, o]): [string, (e: Event) => unknown] => [
      `ping with ${what}`,
      (e) => e.ping(o as never),
    ]),
  ];

  it.each(all)("rejects %s, leaving the event unsettled", async (_, call) => {
    const { event, conn, stream, close } = await deliveredEvent();
    try {
      const before = conn.stats().outMsgs;
      await expectRejection(() => call(event), ErrorCode.Validation);
      expect(conn.stats().outMsgs, "something was sent").toBe(before);
      expect(event.settled).toBe(false);
      const info = await jsm.consumers.info(stream, "c");
      expect(info.num_ack_pending).toBe(1);
      expect(info.delivered.consumer_seq).toBe(1);
      // Still settleable: the failed call changed nothing.
      await event.ack();
      expect(event.settled).toBe(true);
      const acked = await jsm.consumers.info(stream, "c");
      expect(acked.ack_floor.stream_seq).toBe(1);
      expect(acked.num_ack_pending).toBe(0);
    } finally {
      await close();
    }
  });
});

describe("isValidName and isValidSubject", () => {
  it.each(BAD_NAMES)("isValidName refuses a name %s", (_, name) => {
    expect(isValidName(name)).toBe(false);
  });
  it.each(["a", "A-z_09", "a".repeat(255)])("isValidName accepts %s", (name) => {
    expect(isValidName(name)).toBe(true);
  });
  it.each(BAD_SUBJECTS)("isValidSubject refuses a subject with %s", (_, subject) => {
    expect(isValidSubject(subject, true)).toBe(false);
    expect(isValidSubject(subject, false)).toBe(false);
  });
  it.each(["a.*", "a.>", "*", ">", "a.*.c"])("wildcards in %s are allowed only when asked for", (subject) => {
    expect(isValidSubject(subject, true)).toBe(true);
    expect(isValidSubject(subject, false)).toBe(false);
  });
});

describe("boundary values are accepted (controls)", () => {
  it("a 255-character stream name and the longest durations", async () => {
    const name = `${uniqueName()}_${"x".repeat(255)}`.slice(0, 255);
    const created = await events.ensureStream(name, {
      subjects: [`${uniqueName()}.>`],
      maxAgeMs: 9_000_000_000_000,
      deduplicationWindowMs: 60_000,
    });
    expect(created.name).toBe(name);
    const info = await jsm.streams.info(name);
    expect(info.config.max_age).toBe(9_000_000_000_000 * 1_000_000);
    await jsm.streams.delete(name);
  });
});
