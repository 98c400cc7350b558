import { create, toBinary } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  type CollectionResult,
  type DataPoint,
  type Histogram,
  MeterProvider,
  MetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import { createEvents, ErrorCode, type Events, type EventsOptions, handle } from "../src/index.js";
import { VERSION } from "../src/internal/version.js";
import { nextEvent, uniqueName, useServer, waitFor, windshiftError } from "./helpers.js";
import { recordingLogger } from "./log.js";
import { useStackContextManager } from "./otel-context.js";

const env = useServer();

class TestReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const appTracer = tracerProvider.getTracer("app");
let reader: TestReader;
let meterProvider: MeterProvider;
let removeContextManager: () => void;

beforeAll(() => {
  removeContextManager = useStackContextManager();
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});
afterAll(() => {
  removeContextManager();
  propagation.disable();
});
beforeEach(() => {
  exporter.reset();
  reader = new TestReader();
  meterProvider = new MeterProvider({ readers: [reader] });
});

/** A client on its own connection with the test SDK (a new meter provider per test). */
async function client(options: EventsOptions = {}): Promise<Events> {
  return createEvents(await env.connect(), { tracerProvider, meterProvider, ...options });
}

async function setup(producer: Events): Promise<{ stream: string; consumer: string }> {
  const stream = uniqueName();
  await producer.ensureStream(stream, { subjects: [`${stream}.>`] });
  const c = await producer.ensureConsumer(stream, { name: "worker", from: { start: true } });
  exporter.reset();
  return { stream, consumer: c.name };
}

function spans(): ReadableSpan[] {
  return exporter.getFinishedSpans();
}

function span(name: string): ReadableSpan {
  const found = spans().filter((s) => s.name === name);
  expect(
    found.map((s) => s.name),
    `exactly one span "${name}"`,
  ).toEqual([name]);
  return found[0] as ReadableSpan;
}

async function metric(name: string): Promise<{ unit: string; points: DataPoint<number | Histogram>[] }> {
  const { resourceMetrics }: CollectionResult = await reader.collect();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const m of scope.metrics) {
      if (m.descriptor.name === name) {
        expect(scope.scope).toMatchObject({ name: "windshift", version: VERSION });
        return { unit: m.descriptor.unit, points: m.dataPoints as DataPoint<number | Histogram>[] };
      }
    }
  }
  return { unit: "", points: [] };
}

describe("traces", () => {
  it("one trace from publish through process to ack, across two connections", async () => {
    const producer = await client();
    const consumerSide = await client();
    const { stream, consumer } = await setup(producer);
    const root = appTracer.startSpan("checkout");
    await context.with(trace.setSpan(ROOT_CONTEXT, root), () =>
      producer.publish(`${stream}.created`, TestEventSchema, { text: "hi" }),
    );
    root.end();

    await using sub = await consumerSide.subscribe(stream, consumer, { schema: TestEventSchema });
    const event = await nextEvent(sub[Symbol.asyncIterator]());
    context.with(event.context, () => appTracer.startSpan("handler work").end());
    await event.ack();

    const send = span(`send ${stream}.created`);
    const processing = span(`process ${stream}.created`);
    const handler = span("handler work");
    const ack = span(`ack ${stream}.created`);
    const traceId = root.spanContext().traceId;
    for (const s of [send, processing, handler, ack]) expect(s.spanContext().traceId).toBe(traceId);
    expect(send.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(processing.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    expect(processing.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
    expect(handler.parentSpanContext?.spanId).toBe(processing.spanContext().spanId);
    expect(ack.parentSpanContext?.spanId).toBe(processing.spanContext().spanId);
    expect([send.kind, processing.kind, ack.kind]).toEqual([SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.CLIENT]);
    for (const s of [send, processing, ack]) expect(s.status.code).toBe(SpanStatusCode.UNSET);

    expect(send.attributes).toMatchObject({
      "messaging.system": "nats",
      "messaging.operation.type": "send",
      "messaging.operation.name": "publish",
      "messaging.destination.name": `${stream}.created`,
      "messaging.message.id": "1",
      "messaging.nats.stream": stream,
      "windshift.data_type": "windshift.test.v1.TestEvent",
      "server.address": "127.0.0.1",
      "server.port": env.server.port,
    });
    expect(send.attributes["messaging.client.id"]).toMatch(/^\d+$/);
    expect(send.attributes["messaging.message.body.size"]).toBeUndefined();
    expect(processing.attributes).toMatchObject({
      "messaging.system": "nats",
      "messaging.operation.type": "process",
      "messaging.operation.name": "process",
      "messaging.destination.name": `${stream}.created`,
      "messaging.destination.subscription.name": consumer,
      "messaging.nats.stream": stream,
      "messaging.message.id": "1",
      "messaging.nats.delivery_attempt": 1,
      "windshift.data_type": "windshift.test.v1.TestEvent",
    });
    expect(ack.attributes).toMatchObject({
      "messaging.operation.type": "settle",
      "messaging.operation.name": "ack",
      "messaging.destination.subscription.name": consumer,
      "messaging.message.id": "1",
    });
    // The process span ends when the event is settled, not before: after the ack span.
    expect(spans().indexOf(processing)).toBeGreaterThan(spans().indexOf(ack));

    // The context travels under both spellings.
    const jsm = await jetstreamManager(env.nc);
    const stored = await jsm.streams.getMessage(stream, { seq: 1 });
    const expected = `00-${traceId}-${send.spanContext().spanId}-01`;
    expect(stored?.header.get("traceparent")).toBe(expected);
    expect(stored?.header.get("WS-Trace-Parent")).toBe(expected);
  });

  it('traceProcessing: "link" starts a new trace that links to the producer', async () => {
    const producer = await client();
    const consumerSide = await client({ traceProcessing: "link" });
    const { stream, consumer } = await setup(producer);
    await context.with(trace.setSpan(ROOT_CONTEXT, appTracer.startSpan("root")), () =>
      producer.publish(`${stream}.a`, TestEventSchema, {}),
    );
    await using sub = await consumerSide.subscribe(stream, consumer, { schema: TestEventSchema });
    await (await nextEvent(sub[Symbol.asyncIterator]())).ack();
    const send = span(`send ${stream}.a`);
    const processing = span(`process ${stream}.a`);
    expect(processing.parentSpanContext).toBeUndefined();
    expect(processing.spanContext().traceId).not.toBe(send.spanContext().traceId);
    expect(processing.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
  });

  it("continues a trace from windshift-go's header spelling", async () => {
    const consumerSide = await client();
    const { stream, consumer } = await setup(consumerSide);
    const h = natsHeaders();
    h.set("WS-Data-Type", "windshift.test.v1.TestEvent");
    h.set("WS-Published-Time", "2024-01-01T00:00:00.123456789Z");
    h.set("WS-Trace-Parent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    await env.nc.request(`${stream}.go`, toBinary(TestEventSchema, create(TestEventSchema)), {
      headers: h,
      timeout: 5_000,
    });
    await using sub = await consumerSide.subscribe(stream, consumer, { schema: TestEventSchema });
    await (await nextEvent(sub[Symbol.asyncIterator]())).ack();
    const processing = span(`process ${stream}.go`);
    expect(processing.spanContext().traceId).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(processing.parentSpanContext).toMatchObject({ spanId: "b7ad6b7169203331", isRemote: true });
  });

  it("settle spans for each kind of settlement, ping and auto-ping", async () => {
    const events = await client();
    const stream = uniqueName();
    await events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await events.ensureConsumer(stream, { name: "w", from: { start: true }, processingTimeoutMs: 400 });
    for (const s of ["a", "b", "c", "d"]) await events.publish(`${stream}.${s}`, TestEventSchema, {});
    exporter.reset();
    await using sub = await events.subscribe(stream, "w", { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    const a = await nextEvent(it);
    await a.ping();
    await a.reject({ permanent: true });
    await (await nextEvent(it)).reject({ delayMs: 10_000 });
    const c = await nextEvent(it);
    await c.reject();
    const d = await nextEvent(it);
    await waitFor(() => spans().some((s) => s.name === `progress ${stream}.d`), { what: "an auto-ping" });
    await d.ack();
    const names = spans()
      .filter((s) => s.attributes["messaging.operation.type"] === "settle")
      .map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining([
        `progress ${stream}.a`,
        `term ${stream}.a`,
        `nak ${stream}.b`,
        `nak ${stream}.c`,
        `progress ${stream}.d`,
        `ack ${stream}.d`,
      ]),
    );
    for (const s of spans().filter((x) => x.attributes["messaging.operation.type"] === "settle")) {
      expect(s.kind).toBe(SpanKind.CLIENT);
      expect(s.attributes["messaging.operation.name"]).toBe(s.name.split(" ")[0]);
    }
  });

  it("failures set status ERROR and error.type; a retried success does not", async () => {
    const events = await client();
    const { stream } = await setup(events);
    await events.publish(`${stream}.a`, TestEventSchema, {});
    await windshiftError(events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastId: 9 }));
    const nowhere = `${uniqueName("nowhere")}.a`;
    await windshiftError(events.publish(nowhere, TestEventSchema, {}));
    const failed = spans().filter((s) => s.status.code === SpanStatusCode.ERROR);
    expect(failed.map((s) => [s.name, s.attributes["error.type"]])).toEqual([
      [`send ${stream}.a`, ErrorCode.WrongSequence],
      [`send ${nowhere}`, ErrorCode.UnboundSubject],
    ]);
    expect(failed[0]?.events.some((e) => e.name === "exception")).toBe(true);

    exporter.reset();
    const logger = recordingLogger();
    const retrying = await client({ logger });
    const late = uniqueName();
    const pending = retrying.publish(
      `${late}.a`,
      TestEventSchema,
      {},
      { retry: { initialDelayMs: 20, maxDelayMs: 50 } },
    );
    await waitFor(() => logger.lines.some((l) => l.message === "publish failed, retrying"), { what: "a retry" });
    await events.ensureStream(late, { subjects: [`${late}.>`] });
    await pending;
    const retried = span(`send ${late}.a`);
    expect(retried.status.code).toBe(SpanStatusCode.UNSET);
    expect(retried.attributes["error.type"]).toBeUndefined();
    expect(retried.events.filter((e) => e.name === "retry").length).toBeGreaterThan(0);
  });

  it("a payload that cannot be decoded marks the process span INVALID_DATA", async () => {
    const events = await client();
    const { stream, consumer } = await setup(events);
    const h = natsHeaders();
    h.set("WS-Data-Type", "windshift.test.v1.TestEvent");
    await env.nc.request(`${stream}.bad`, new Uint8Array([0xff, 0xff]), { headers: h, timeout: 5_000 });
    await using sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
    const ev = await nextEvent(sub[Symbol.asyncIterator]());
    await windshiftError(() => ev.data);
    await ev.reject({ permanent: true });
    const processing = span(`process ${stream}.bad`);
    expect(processing.status.code).toBe(SpanStatusCode.ERROR);
    expect(processing.attributes["error.type"]).toBe(ErrorCode.InvalidData);
  });

  it("events fetched but never handed out get no spans", async () => {
    const events = await client();
    const { stream, consumer } = await setup(events);
    for (let i = 0; i < 5; i++) await events.publish(`${stream}.a`, TestEventSchema, {});
    exporter.reset();
    const sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
    const jsm = await jetstreamManager(env.nc);
    await waitFor(async () => (await jsm.consumers.info(stream, consumer)).num_ack_pending === 5);
    for await (const ev of sub) {
      await ev.ack();
      break;
    }
    expect(spans().filter((s) => s.name.startsWith("process ")).length).toBe(1);
  });

  it("marks a deduplicated publish", async () => {
    const events = await client();
    const { stream } = await setup(events);
    await events.publish(`${stream}.a`, TestEventSchema, {}, { idempotencyKey: "k" });
    await events.publish(`${stream}.a`, TestEventSchema, {}, { idempotencyKey: "k" });
    const sends = spans().filter((s) => s.name === `send ${stream}.a`);
    expect(sends.map((s) => [s.attributes["messaging.message.id"], s.attributes["windshift.duplicate"]])).toEqual([
      ["1", undefined],
      ["1", true],
    ]);
  });

  it("the process span of an event left unsettled ends when the subscription closes", async () => {
    const events = await client();
    const { stream, consumer } = await setup(events);
    await events.publish(`${stream}.a`, TestEventSchema, {});
    const sub = await events.subscribe(stream, consumer, { schema: TestEventSchema, closeTimeoutMs: 50 });
    const ev = await nextEvent(sub[Symbol.asyncIterator]());
    expect(spans().some((s) => s.name.startsWith("process "))).toBe(false);
    await sub.close();
    expect(span(`process ${stream}.a`).status.code).toBe(SpanStatusCode.UNSET);
    expect(ev.settled).toBe(true); // given back by close
    expect(spans().filter((s) => s.name.startsWith("process ")).length).toBe(1);
  });

  it("a traceparent given in headers is sent as is", async () => {
    const events = await client();
    const { stream } = await setup(events);
    const mine = "00-11111111111111111111111111111111-2222222222222222-01";
    await context.with(trace.setSpan(ROOT_CONTEXT, appTracer.startSpan("ignored")), () =>
      events.publish(`${stream}.a`, TestEventSchema, {}, { headers: { traceparent: mine, "x-tenant": "acme" } }),
    );
    const jsm = await jetstreamManager(env.nc);
    const stored = await jsm.streams.getMessage(stream, { seq: 1 });
    expect(stored?.header.get("traceparent")).toBe(mine);
    expect(stored?.header.get("WS-Trace-Parent")).toBe(mine);
    expect(stored?.header.get("x-tenant")).toBe("acme");
  });

  it("recordBodySize adds messaging.message.body.size", async () => {
    const events = await client({ recordBodySize: true });
    const { stream, consumer } = await setup(events);
    await events.publish(`${stream}.a`, TestEventSchema, { text: "12345" });
    await using sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
    await (await nextEvent(sub[Symbol.asyncIterator]())).ack();
    const size = toBinary(TestEventSchema, create(TestEventSchema, { text: "12345" })).length;
    expect(span(`send ${stream}.a`).attributes["messaging.message.body.size"]).toBe(size);
    expect(span(`process ${stream}.a`).attributes["messaging.message.body.size"]).toBe(size);
  });

  it("ensureStream and ensureConsumer make CLIENT spans", async () => {
    const events = await client();
    const stream = uniqueName();
    await events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await events.ensureConsumer(stream, { name: "w" });
    await windshiftError(events.ensureConsumer(uniqueName("missing"), { name: "w" }));
    const managed = spans().map((s) => [s.name, s.kind, s.status.code]);
    expect(managed).toEqual([
      [`ensureStream ${stream}`, SpanKind.CLIENT, SpanStatusCode.UNSET],
      [`ensureConsumer ${stream}`, SpanKind.CLIENT, SpanStatusCode.UNSET],
      [expect.stringMatching(/^ensureConsumer missing_/), SpanKind.CLIENT, SpanStatusCode.ERROR],
    ]);
  });
});

describe("processors", () => {
  it("run each handler inside its event's process span, and mark the span of a failed attempt", async () => {
    const events = await client();
    const { stream, consumer } = await setup(events);
    await events.publish(`${stream}.a`, TestEventSchema, { text: "x" });
    const processor = await events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        appTracer.startSpan(`work ${event.deliveryAttempt}`, {}, context.active()).end();
        if (event.deliveryAttempt === 1) throw new Error("first try fails");
      }),
      { backoff: { initialDelayMs: 10 } },
    );
    await waitFor(() => processor.stats.acked === 1, { what: "the second attempt to succeed" });
    await processor.close();
    const processing = spans().filter((s) => s.name === `process ${stream}.a`);
    expect(processing).toHaveLength(2);
    const [failed, succeeded] = processing as [ReadableSpan, ReadableSpan];
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
    expect(succeeded.status.code).toBe(SpanStatusCode.UNSET);
    expect(span("work 1").parentSpanContext?.spanId).toBe(failed.spanContext().spanId);
    expect(span("work 2").parentSpanContext?.spanId).toBe(succeeded.spanContext().spanId);
    expect(span(`nak ${stream}.a`).parentSpanContext?.spanId).toBe(failed.spanContext().spanId);
    expect(span(`ack ${stream}.a`).parentSpanContext?.spanId).toBe(succeeded.spanContext().spanId);
  });
});

describe("metrics", () => {
  it("counts sent and consumed messages and times operations, per the conventions", async () => {
    const events = await client();
    const { stream, consumer } = await setup(events);
    for (let i = 0; i < 3; i++) await events.publish(`${stream}.a`, TestEventSchema, {});
    await windshiftError(events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastId: 1 }));
    await using sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    await (await nextEvent(it)).ack();
    await (await nextEvent(it)).reject({ permanent: true });
    await (await nextEvent(it)).ack();

    const sent = await metric("messaging.client.sent.messages");
    expect(sent.unit).toBe("{message}");
    const ok = sent.points.find((p) => p.attributes["error.type"] === undefined);
    const failed = sent.points.find((p) => p.attributes["error.type"] === ErrorCode.WrongSequence);
    expect(ok?.value).toBe(3);
    expect(failed?.value).toBe(1);
    expect(ok?.attributes).toMatchObject({
      "messaging.system": "nats",
      "messaging.operation.name": "publish",
      "messaging.nats.stream": stream,
    });
    // No per-subject attribute on metrics: subjects can be unbounded.
    for (const p of sent.points) expect(p.attributes["messaging.destination.name"]).toBeUndefined();

    const consumed = await metric("messaging.client.consumed.messages");
    expect(consumed.unit).toBe("{message}");
    expect(consumed.points.map((p) => p.value)).toEqual([3]);
    expect(consumed.points[0]?.attributes).toMatchObject({
      "messaging.system": "nats",
      "messaging.destination.subscription.name": consumer,
      "messaging.destination.template": stream,
      "messaging.nats.stream": stream,
    });

    const ops = await metric("messaging.client.operation.duration");
    expect(ops.unit).toBe("s");
    const count = (name: string) =>
      ops.points
        .filter((p) => p.attributes["messaging.operation.name"] === name)
        .reduce((n, p) => n + (p.value as Histogram).count, 0);
    expect([count("publish"), count("ack"), count("term"), count("process")]).toEqual([4, 2, 1, 0]);
    const first = ops.points[0];
    if (first === undefined) throw new Error("no operation duration was recorded");
    expect((first.value as Histogram).buckets.boundaries).toEqual([
      0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
    ]);

    const processing = await metric("messaging.process.duration");
    expect(processing.unit).toBe("s");
    expect(processing.points.reduce((n, p) => n + (p.value as Histogram).count, 0)).toBe(3);
  });
});

describe("without an SDK", () => {
  it("works, and writes no trace headers", async () => {
    const events = createEvents(await env.connect());
    const stream = uniqueName();
    await events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await events.ensureConsumer(stream, { name: "w", from: { start: true } });
    await events.publish(`${stream}.a`, TestEventSchema, {});
    await using sub = await events.subscribe(stream, "w", { schema: TestEventSchema });
    const ev = await nextEvent(sub[Symbol.asyncIterator]());
    context.with(ev.context, () => trace.getTracer("x").startSpan("child").end());
    await ev.ack();
    const jsm = await jetstreamManager(env.nc);
    const stored = await jsm.streams.getMessage(stream, { seq: 1 });
    expect([...(stored?.header.keys() ?? [])].sort()).toEqual(["WS-Data-Type", "WS-Published-Time"]);
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(trace.getSpanContext(ev.context)?.traceFlags ?? TraceFlags.NONE).toBe(TraceFlags.NONE);
  });

  it("starts tracing once an SDK is registered globally, after the client was created", async () => {
    const events = createEvents(await env.connect());
    const stream = uniqueName();
    await events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await events.publish(`${stream}.a`, TestEventSchema, {});
    expect(spans()).toEqual([]);
    trace.setGlobalTracerProvider(tracerProvider);
    try {
      await waitFor(
        async () => {
          await events.publish(`${stream}.a`, TestEventSchema, {});
          return spans().some((s) => s.name === `send ${stream}.a`);
        },
        { intervalMs: 100, what: "a span through the global provider" },
      );
    } finally {
      trace.disable();
    }
  });

  it("the package version matches package.json", async () => {
    const { readFile } = await import("node:fs/promises");
    const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });
});
