/**
 * The bad inputs of the validation tests, shared by the conformance files
 * (`validation*.test.ts`: the typed error, on every engine) and by
 * `test/jetstream/validation.test.ts` (nothing goes out on the NATS
 * connection, as the server counts it).
 */
import { create, createRegistry } from "@bufbuild/protobuf";
import { expect } from "vitest";
import { OtherEventSchema, TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, type Event, type Events, WindshiftError } from "../../src/index.js";
import { uniqueName } from "./harness.js";

/**
 * Runs `call`, which must return a promise (not throw) that rejects with a
 * `WindshiftError` of `code` whose message contains `mentions`.
 */
export async function expectRejection(
  call: () => unknown,
  code: ErrorCode,
  mentions?: string,
): Promise<WindshiftError> {
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

/** The streams the cases run against, named once the file's engine is up. */
export interface Scene {
  /** An empty stream capturing `${pubStream}.>`, for publish cases. */
  pubStream: string;
  /** A stream holding one event, with a durable consumer `subConsumer` that never saw it. */
  subStream: string;
  readonly subConsumer: string;
  /** A durable consumer of `pubStream` that is never read: its pending count is the stream's event count. */
  readonly pubWatcher: string;
}

/** A scene whose streams {@link setUpScene} creates and names. */
export function emptyScene(): Scene {
  return { pubStream: "", subStream: "", subConsumer: "c", pubWatcher: "watch" };
}

/** Creates the scene's streams, their consumers and the one event of `subStream`. */
export async function setUpScene(events: Events, scene: Scene): Promise<void> {
  scene.pubStream = uniqueName("pub");
  scene.subStream = uniqueName("sub");
  await events.ensureStream(scene.pubStream, { subjects: [`${scene.pubStream}.>`] });
  await events.ensureConsumer(scene.pubStream, { name: scene.pubWatcher, from: { start: true } });
  await events.ensureStream(scene.subStream, { subjects: [`${scene.subStream}.>`] });
  await events.ensureConsumer(scene.subStream, { name: scene.subConsumer, from: { start: true } });
  await events.publish(`${scene.subStream}.a`, TestEventSchema, { text: "waiting" });
}

/** One bad call. */
export interface Case {
  readonly name: string;
  /** `stream` is a fresh valid stream name, unique per run. */
  readonly run: (e: Events, stream: string) => unknown;
  /** @default ErrorCode.Validation */
  readonly code?: ErrorCode;
  /** A word the message must contain (the offending option, usually). */
  readonly mentions?: string;
}

/** A value as it reads in a test name: strings quoted, so "1" and 1 differ. */
export function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

export const BAD_NAMES: [string, unknown][] = [
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

export const BAD_SUBJECTS: [string, unknown][] = [
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

/** The retry options' names before the redesign (p-retry's), each refused as unknown now. */
export const OLD_RETRY_KEYS = ["retries", "factor", "minTimeout", "maxTimeout", "maxRetryTime", "randomize"] as const;

export const BAD_RETRIES: [string, unknown][] = [
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

/** Options every client takes, badly given (to `createEvents` or `createMemoryEvents`). */
export const BAD_CLIENT_OPTIONS: [string, unknown, string][] = [
  ["an unknown option", { tracer: {} }, "tracer"],
  ["a logger without methods", { logger: {} }, "logger"],
  ["a logger missing error()", { logger: { debug() {}, info() {}, warn() {} } }, "logger"],
  ["a logger that is a string", { logger: "console" }, "logger"],
  ["a tracerProvider without getTracer()", { tracerProvider: {} }, "tracerProvider"],
  ["a meterProvider without getMeter()", { meterProvider: { getTracer() {} } }, "meterProvider"],
  ['traceProcessing "parent"', { traceProcessing: "parent" }, "traceProcessing"],
  ['recordBodySize "yes"', { recordBodySize: "yes" }, "recordBodySize"],
];

export function streamCases(): Case[] {
  return [
    ...BAD_NAMES.map(
      ([what, name]): Case => ({
        name: `name ${what}`,
        run: (e, s) => e.ensureStream(name as never, { subjects: [`${s}.>`] }),
        mentions: "stream",
      }),
    ),
    { name: "no options at all", run: (e, s) => e.ensureStream(s), mentions: "subjects" },
    { name: "no subjects and no sources", run: (e, s) => e.ensureStream(s, {}), mentions: "subjects" },
    { name: "empty subjects and sources", run: (e, s) => e.ensureStream(s, { subjects: [], sources: [] }) },
    ...BAD_SUBJECTS.map(
      ([what, subject]): Case => ({
        name: `subject ${what}`,
        run: (e, s) => e.ensureStream(s, { subjects: [`${s}.a`, subject as never] }),
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
    { name: "options that are a string", run: (e, s) => e.ensureStream(s, `${s}.>` as never) },
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
}

/**
 * Cases run against the scene's `subStream`, so that a consumer created by
 * mistake would be there to see; a durable one would be named "ok".
 */
export function consumerCases(scene: Scene): Case[] {
  const on = (): string => scene.subStream;
  return [
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
    {
      name: "the old name maxPendingEvents (now maxUnsettledEvents)",
      run: (e) => e.ensureConsumer(on(), { name: "ok", maxPendingEvents: 5 } as never),
      mentions: "maxPendingEvents",
    },
    { name: "options that are a string", run: (e) => e.ensureConsumer(on(), "ok" as never) },
    {
      name: "a signal that is not an AbortSignal",
      run: (e) => e.ensureConsumer(on(), { name: "ok", signal: "abort" as never }),
      mentions: "signal",
    },
  ];
}

const OK = { text: "x" };

export function publishCases(scene: Scene): Case[] {
  const subject = (): string => `${scene.pubStream}.ok`;
  return [
    {
      name: "a subject with *",
      run: (e) => e.publish(`${scene.pubStream}.*`, TestEventSchema, OK),
      mentions: "subject",
    },
    {
      name: "a subject with >",
      run: (e) => e.publish(`${scene.pubStream}.>`, TestEventSchema, OK),
      mentions: "subject",
    },
    ...BAD_SUBJECTS.map(
      ([what, s]): Case => ({
        name: `subject ${what}`,
        run: (e) => e.publish(s as never, TestEventSchema, OK),
        mentions: "subject",
      }),
    ),
    { name: "an undefined subject", run: (e) => e.publish(undefined as never, TestEventSchema, OK) },
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
        run: (e) => e.publish(subject(), schema as never, OK as never),
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
        run: (e) => e.publish(subject(), TestEventSchema, OK, { idempotencyKey: key as never }),
        mentions: "idempotencyKey",
      }),
    ),
    ...[-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "0"].map(
      (value): Case => ({
        name: `expectedLastId ${show(value)}`,
        run: (e) => e.publish(subject(), TestEventSchema, OK, { expectedLastId: value as never }),
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
        run: (e) => e.publish(subject(), TestEventSchema, OK, { occurredAt: value as never }),
        mentions: "occurredAt",
      }),
    ),
    ...[0, ...BAD_DURATIONS.map(([, d]) => d)].map(
      (value): Case => ({
        name: `timeoutMs ${show(value)}`,
        run: (e) => e.publish(subject(), TestEventSchema, OK, { timeoutMs: value as never }),
        mentions: "timeoutMs",
      }),
    ),
    ...BAD_RETRIES.map(
      ([what, retry]): Case => ({
        name: `retry ${what}`,
        run: (e) => e.publish(subject(), TestEventSchema, OK, { retry: retry as never }),
        mentions: "retry",
      }),
    ),
    ...OLD_RETRY_KEYS.map(
      (key): Case => ({
        name: `retry with the old name ${key}`,
        run: (e) => e.publish(subject(), TestEventSchema, OK, { retry: { [key]: 1 } as never }),
        mentions: `retry.${key}`,
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
        run: (e) => e.publish(subject(), TestEventSchema, OK, { signal: signal as never }),
        mentions: "signal",
      }),
    ),
    {
      name: "an unknown option",
      run: (e) => e.publish(subject(), TestEventSchema, OK, { msgId: "x" } as never),
      mentions: "msgId",
    },
    { name: "options that are a string", run: (e) => e.publish(subject(), TestEventSchema, OK, "x" as never) },
  ];
}

/**
 * A publish one byte over `maxPayload` (the engine's largest payload): field
 * 3 (bytes) takes a tag byte, a 3-byte length varint (for 16 KiB..2 MiB) and
 * the bytes.
 */
export function oversizeCase(scene: Scene, maxPayload: number): Case {
  const blob = new Uint8Array(maxPayload + 1 - 1 - 3).fill(7);
  return {
    name: `a payload one byte over ${maxPayload} bytes`,
    run: (e) => e.publish(`${scene.pubStream}.big`, TestEventSchema, { blob }),
    mentions: "data",
  };
}

/** A publish whose signal is aborted before the call. */
export function abortedPublishCase(scene: Scene): Case {
  const ac = new AbortController();
  ac.abort(new Error("stop"));
  return {
    name: "an already aborted signal",
    run: (e) => e.publish(`${scene.pubStream}.ok`, TestEventSchema, OK, { signal: ac.signal }),
    code: ErrorCode.Aborted,
  };
}

export function subscribeCases(scene: Scene): Case[] {
  const registry = createRegistry(TestEventSchema, OtherEventSchema);
  const sub = (): [string, string] => [scene.subStream, scene.subConsumer];
  return [
    ...BAD_NAMES.map(
      ([what, name]): Case => ({
        name: `stream name ${what}`,
        run: (e) => e.subscribe(name as never, scene.subConsumer),
        mentions: "stream",
      }),
    ),
    ...BAD_NAMES.map(
      ([what, name]): Case => ({
        name: `consumer name ${what}`,
        run: (e) => e.subscribe(scene.subStream, name as never),
        mentions: "consumer",
      }),
    ),
    {
      name: "schema and registry both",
      run: (e) => e.subscribe(...sub(), { schema: TestEventSchema, registry } as never),
    },
    {
      name: "a schema that is not a schema",
      run: (e) => e.subscribe(...sub(), { schema: {} as never }),
      mentions: "schema",
    },
    {
      name: "a registry that is not a registry",
      run: (e) => e.subscribe(...sub(), { registry: [TestEventSchema] as never }),
      mentions: "registry",
    },
    ...[0, -1, 1.5, Number.NaN, "50"].map(
      (value): Case => ({
        name: `prefetch ${show(value)}`,
        run: (e) => e.subscribe(...sub(), { prefetch: value as never }),
        mentions: "prefetch",
      }),
    ),
    ...["yes", 1, null].map(
      (value): Case => ({
        name: `autoPing ${show(value)}`,
        run: (e) => e.subscribe(...sub(), { autoPing: value as never }),
        mentions: "autoPing",
      }),
    ),
    ...BAD_RETRIES.map(
      ([what, retry]): Case => ({
        name: `retry ${what}`,
        run: (e) => e.subscribe(...sub(), { retry: retry as never }),
        mentions: "retry",
      }),
    ),
    {
      name: "a signal that is not an AbortSignal",
      run: (e) => e.subscribe(...sub(), { signal: {} as never }),
      mentions: "signal",
    },
    {
      name: "an unknown option",
      run: (e) => e.subscribe(...sub(), { batch: 10 } as never),
      mentions: "batch",
    },
    {
      name: "the old name maxPendingEvents (now prefetch)",
      run: (e) => e.subscribe(...sub(), { maxPendingEvents: 10 } as never),
      mentions: "maxPendingEvents",
    },
    { name: "options that are a string", run: (e) => e.subscribe(...sub(), "x" as never) },
  ];
}

/** Cases of `process` that must fail before it subscribes (the stream's event stays unhandled). */
export function processCases(scene: Scene): Case[] {
  const sub = (): [string, string] => [scene.subStream, scene.subConsumer];
  return [
    {
      name: "the old name maxPendingEvents (now maxWaitingEvents)",
      run: (e) => e.process(...sub(), () => {}, { maxPendingEvents: 10 } as never),
      mentions: "maxPendingEvents",
    },
  ];
}

const BAD_REJECTS: [string, unknown][] = [
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

const BAD_SETTLES: [string, unknown][] = [
  ["timeoutMs 0", { timeoutMs: 0 }],
  ["timeoutMs NaN", { timeoutMs: Number.NaN }],
  ...BAD_RETRIES.map(([what, retry]): [string, unknown] => [`retry ${what}`, { retry }]),
  ["a bad signal", { signal: {} }],
  ["an unknown option", { delayMs: 10 }],
];

/** Bad calls of `ack`, `reject` and `ping` on a delivered event. */
export const SETTLEMENT_CASES: [string, (e: Event) => unknown][] = [
  ...BAD_REJECTS.map(([what, o]): [string, (e: Event) => unknown] => [
    `reject with ${what}`,
    (e) => e.reject(o as never),
  ]),
  ...BAD_SETTLES.map(([what, o]): [string, (e: Event) => unknown] => [`ack with ${what}`, (e) => e.ack(o as never)]),
  ...BAD_SETTLES.map(([what, o]): [string, (e: Event) => unknown] => [`ping with ${what}`, (e) => e.ping(o as never)]),
];
