import { readFile } from "node:fs/promises";
import { create, toBinary } from "@bufbuild/protobuf";
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
import { OtherEventSchema, TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { type ClientOptions, ErrorCode, type Events, handle } from "../../src/index.js";
import { VERSION } from "../../src/internal/version.js";
import { recordingLogger } from "../log.js";
import { useStackContextManager } from "../otel-context.js";
import { describeEngines, type EngineName, nextOf, uniqueName } from "./harness.js";
import { until } from "./support.js";

// Spans and metrics per the OpenTelemetry messaging conventions, the same on
// every engine but for what names the engine: `messaging.system`, and the
// server's address and port and the client id, which only a NATS connection
// has (their values are checked in test/jetstream/telemetry.test.ts).

/** What each engine says about its connection. */
const CONNECTION: Record<EngineName, { system: string; serverAttributes: string[] }> = {
  jetstream: { system: "nats", serverAttributes: ["server.address", "server.port", "messaging.client.id"] },
  memory: { system: "memory", serverAttributes: [] },
  postgres: { system: "postgresql", serverAttributes: ["server.address", "server.port"] },
};
const SERVER_ATTRIBUTES = ["server.address", "server.port", "messaging.client.id"];

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const SPAN_ID = "b7ad6b7169203331";

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

describeEngines("telemetry", (env) => {
  /** A client with the test SDK (a new meter provider per test). */
  const client = (options: ClientOptions = {}): Promise<Events> =>
    env.client({ tracerProvider, meterProvider, ...options });

  async function setup(producer: Events): Promise<{ stream: string; consumer: string }> {
    const stream = uniqueName();
    await producer.ensureStream(stream, { subjects: [`${stream}.>`] });
    const c = await producer.ensureConsumer(stream, { name: "worker", from: { start: true } });
    exporter.reset();
    return { stream, consumer: c.name };
  }

  const { system, serverAttributes } = CONNECTION[env.name];

  describe("traces", () => {
    it("one trace from publish through process to ack, across two clients", async () => {
      const producer = await client();
      const consumerSide = await client();
      const { stream, consumer } = await setup(producer);
      const root = appTracer.startSpan("checkout");
      await context.with(trace.setSpan(ROOT_CONTEXT, root), () =>
        producer.publish(`${stream}.created`, TestEventSchema, { text: "hi" }),
      );
      root.end();

      await using sub = await consumerSide.subscribe(stream, consumer, { schema: TestEventSchema });
      const event = await nextOf(sub[Symbol.asyncIterator]());
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
        "messaging.system": system,
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.destination.name": `${stream}.created`,
        "messaging.message.id": "1",
        "messaging.nats.stream": stream,
        "windshift.data_type": "windshift.test.v1.TestEvent",
      });
      for (const s of [send, processing, ack]) {
        expect(SERVER_ATTRIBUTES.filter((k) => k in s.attributes)).toEqual(serverAttributes);
      }
      expect(send.attributes["messaging.message.body.size"]).toBeUndefined();
      expect(processing.attributes).toMatchObject({
        "messaging.system": system,
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
        "messaging.system": system,
        "messaging.operation.type": "settle",
        "messaging.operation.name": "ack",
        "messaging.destination.subscription.name": consumer,
        "messaging.message.id": "1",
      });
      // The process span ends when the event is settled, not before: after the ack span.
      expect(spans().indexOf(processing)).toBeGreaterThan(spans().indexOf(ack));

      // The context travels under both spellings.
      const expected = `00-${traceId}-${send.spanContext().spanId}-01`;
      expect(event.headers.get("traceparent")).toBe(expected);
      expect(event.headers.get("WS-Trace-Parent")).toBe(expected);
    });

    it('traceProcessing: "link" starts a new trace that links to the producer', async () => {
      const producer = await client();
      const consumerSide = await client({ traceProcessing: "link" });
      const { stream, consumer } = await setup(producer);
      await context.with(trace.setSpan(ROOT_CONTEXT, appTracer.startSpan("root")), () =>
        producer.publish(`${stream}.a`, TestEventSchema, {}),
      );
      await using sub = await consumerSide.subscribe(stream, consumer, { schema: TestEventSchema });
      await (await nextOf(sub[Symbol.asyncIterator]())).ack();
      const send = span(`send ${stream}.a`);
      const processing = span(`process ${stream}.a`);
      expect(processing.parentSpanContext).toBeUndefined();
      expect(processing.spanContext().traceId).not.toBe(send.spanContext().traceId);
      expect(processing.links.map((l) => l.context.spanId)).toEqual([send.spanContext().spanId]);
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
      const a = await nextOf(it);
      await a.ping();
      await a.reject({ permanent: true });
      await (await nextOf(it)).reject({ delayMs: 10_000 });
      const c = await nextOf(it);
      await c.reject();
      const d = await nextOf(it);
      await env.eventually(() => spans().some((s) => s.name === `progress ${stream}.d`), { what: "an auto-ping" });
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
      await expect(events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastId: 9 })).rejects.toMatchObject({
        code: ErrorCode.WrongSequence,
      });
      const nowhere = `${uniqueName("nowhere")}.a`;
      await expect(events.publish(nowhere, TestEventSchema, {})).rejects.toMatchObject({
        code: ErrorCode.UnboundSubject,
      });
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
      await env.eventually(() => logger.lines.some((l) => l.message === "publish failed, retrying"), {
        what: "a retry",
      });
      await events.ensureStream(late, { subjects: [`${late}.>`] });
      await until(env, pending, "the retried publish");
      const retried = span(`send ${late}.a`);
      expect(retried.status.code).toBe(SpanStatusCode.UNSET);
      expect(retried.attributes["error.type"]).toBeUndefined();
      expect(retried.events.filter((e) => e.name === "retry").length).toBeGreaterThan(0);
    });

    it("an event of another type marks the process span INVALID_DATA", async () => {
      const events = await client();
      const { stream, consumer } = await setup(events);
      await events.publish(`${stream}.other`, OtherEventSchema, { name: "not a TestEvent" });
      await using sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
      const ev = await nextOf(sub[Symbol.asyncIterator]());
      expect(() => ev.data).toThrow(expect.objectContaining({ code: ErrorCode.InvalidData }));
      await ev.reject({ permanent: true });
      const processing = span(`process ${stream}.other`);
      expect(processing.status.code).toBe(SpanStatusCode.ERROR);
      expect(processing.attributes["error.type"]).toBe(ErrorCode.InvalidData);
    });

    it("events fetched but never handed out get no spans", async () => {
      const events = await client();
      const { stream, consumer } = await setup(events);
      for (let i = 0; i < 5; i++) await events.publish(`${stream}.a`, TestEventSchema, {});
      exporter.reset();
      const sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
      await env.eventually(async () => (await env.progress(stream, consumer)).unsettled === 5, {
        what: "all five fetched",
      });
      const first = await nextOf(sub[Symbol.asyncIterator]());
      await first.ack();
      await until(env, sub.close(), "the subscription to close");
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
      const ev = await nextOf(sub[Symbol.asyncIterator]());
      expect(spans().some((s) => s.name.startsWith("process "))).toBe(false);
      // closeTimeoutMs is real time on every engine: close waits for your code, not for the clock.
      await sub.close();
      expect(span(`process ${stream}.a`).status.code).toBe(SpanStatusCode.UNSET);
      expect(ev.settled).toBe(true); // given back by close
      expect(spans().filter((s) => s.name.startsWith("process ")).length).toBe(1);
    });

    it("a traceparent given in headers is sent as is", async () => {
      const events = await client();
      const { stream, consumer } = await setup(events);
      const mine = "00-11111111111111111111111111111111-2222222222222222-01";
      await context.with(trace.setSpan(ROOT_CONTEXT, appTracer.startSpan("ignored")), () =>
        events.publish(`${stream}.a`, TestEventSchema, {}, { headers: { traceparent: mine, "x-tenant": "acme" } }),
      );
      await using sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
      const ev = await nextOf(sub[Symbol.asyncIterator]());
      expect(ev.headers.get("traceparent")).toBe(mine);
      expect(ev.headers.get("WS-Trace-Parent")).toBe(mine);
      expect(ev.headers.get("x-tenant")).toBe("acme");
      await ev.ack();
    });

    it("recordBodySize adds messaging.message.body.size", async () => {
      const events = await client({ recordBodySize: true });
      const { stream, consumer } = await setup(events);
      await events.publish(`${stream}.a`, TestEventSchema, { text: "12345" });
      await using sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
      await (await nextOf(sub[Symbol.asyncIterator]())).ack();
      const size = toBinary(TestEventSchema, create(TestEventSchema, { text: "12345" })).length;
      expect(span(`send ${stream}.a`).attributes["messaging.message.body.size"]).toBe(size);
      expect(span(`process ${stream}.a`).attributes["messaging.message.body.size"]).toBe(size);
    });

    it("ensureStream and ensureConsumer make CLIENT spans", async () => {
      const events = await client();
      const stream = uniqueName();
      await events.ensureStream(stream, { subjects: [`${stream}.>`] });
      await events.ensureConsumer(stream, { name: "w" });
      await expect(events.ensureConsumer(uniqueName("missing"), { name: "w" })).rejects.toMatchObject({
        code: ErrorCode.NotFound,
      });
      const managed = spans().map((s) => [s.name, s.kind, s.status.code]);
      expect(managed).toEqual([
        [`ensureStream ${stream}`, SpanKind.CLIENT, SpanStatusCode.UNSET],
        [`ensureConsumer ${stream}`, SpanKind.CLIENT, SpanStatusCode.UNSET],
        [expect.stringMatching(/^ensureConsumer missing_/), SpanKind.CLIENT, SpanStatusCode.ERROR],
      ]);
      for (const s of spans()) expect(s.attributes["messaging.system"]).toBe(system);
    });

    it.each([true, false])(
      "with the longest processing timeout (autoPing %s), an event being worked on is neither pinged nor let go",
      async (autoPing) => {
        const events = await client();
        const stream = uniqueName();
        await events.ensureStream(stream, { subjects: [`${stream}.>`] });
        await events.ensureConsumer(stream, {
          name: "w",
          from: { start: true },
          processingTimeoutMs: 9_000_000_000_000,
        });
        await events.publish(`${stream}.a`, TestEventSchema, {});
        exporter.reset();
        await using sub = await events.subscribe(stream, "w", { schema: TestEventSchema, autoPing, closeTimeoutMs: 0 });
        const ev = await nextOf(sub[Symbol.asyncIterator]());
        const mine = () => spans().filter((s) => s.attributes["messaging.nats.stream"] === stream);
        await env.elapse(100);
        // A ping is due after a quarter of the processing timeout; the process span ends with the event.
        expect(mine().map((s) => s.name)).toEqual([]);
        await ev.ack();
        expect(mine().map((s) => s.name)).toEqual([`ack ${stream}.a`, `process ${stream}.a`]);
      },
    );
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
      await env.eventually(() => processor.stats.acked === 1, { what: "the second attempt to succeed" });
      await until(env, processor.close(), "the processor to close");
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
      await expect(events.publish(`${stream}.a`, TestEventSchema, {}, { expectedLastId: 1 })).rejects.toMatchObject({
        code: ErrorCode.WrongSequence,
      });
      await using sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
      const it = sub[Symbol.asyncIterator]();
      await (await nextOf(it)).ack();
      await (await nextOf(it)).reject({ permanent: true });
      await (await nextOf(it)).ack();

      const sent = await metric("messaging.client.sent.messages");
      expect(sent.unit).toBe("{message}");
      const ok = sent.points.find((p) => p.attributes["error.type"] === undefined);
      const failed = sent.points.find((p) => p.attributes["error.type"] === ErrorCode.WrongSequence);
      expect(ok?.value).toBe(3);
      expect(failed?.value).toBe(1);
      expect(ok?.attributes).toMatchObject({
        "messaging.system": system,
        "messaging.operation.name": "publish",
        "messaging.nats.stream": stream,
      });
      // No per-subject attribute on metrics: subjects can be unbounded.
      for (const p of sent.points) expect(p.attributes["messaging.destination.name"]).toBeUndefined();

      const consumed = await metric("messaging.client.consumed.messages");
      expect(consumed.unit).toBe("{message}");
      expect(consumed.points.map((p) => p.value)).toEqual([3]);
      expect(consumed.points[0]?.attributes).toMatchObject({
        "messaging.system": system,
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

    it("are recorded with no tracing SDK, fire-and-forget acks included", async () => {
      const events = await env.client({ meterProvider });
      const { stream, consumer } = await setup(events);
      await events.publish(`${stream}.a`, TestEventSchema, {});
      await using sub = await events.subscribe(stream, consumer, { schema: TestEventSchema, confirmAcks: false });
      await (await nextOf(sub[Symbol.asyncIterator]())).ack();
      expect(spans()).toEqual([]);
      const total = async (name: string, operation?: string) =>
        (await metric(name)).points
          .filter((p) => operation === undefined || p.attributes["messaging.operation.name"] === operation)
          .reduce((n, p) => n + (typeof p.value === "number" ? p.value : p.value.count), 0);
      expect(await total("messaging.client.sent.messages")).toBe(1);
      expect(await total("messaging.client.consumed.messages")).toBe(1);
      expect(await total("messaging.client.operation.duration", "publish")).toBe(1);
      expect(await total("messaging.client.operation.duration", "ack")).toBe(1);
      expect(await total("messaging.process.duration")).toBe(1);
    });

    it("tracer and meter scopes carry the package's name and package.json's version", async () => {
      const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as {
        version: string;
      };
      expect(VERSION).toBe(pkg.version);
      const events = await client();
      const { stream } = await setup(events);
      await events.publish(`${stream}.a`, TestEventSchema, {});
      expect(span(`send ${stream}.a`).instrumentationScope).toMatchObject({ name: "windshift", version: pkg.version });
      expect((await metric("messaging.client.sent.messages")).points.length).toBeGreaterThan(0);
    });
  });

  describe("without an SDK", () => {
    it("works, and sends no trace context", async () => {
      const events = await env.client();
      const stream = uniqueName();
      await events.ensureStream(stream, { subjects: [`${stream}.>`] });
      await events.ensureConsumer(stream, { name: "w", from: { start: true } });
      await events.publish(`${stream}.a`, TestEventSchema, {});
      await using sub = await events.subscribe(stream, "w", { schema: TestEventSchema });
      const ev = await nextOf(sub[Symbol.asyncIterator]());
      context.with(ev.context, () => trace.getTracer("x").startSpan("child").end());
      await ev.ack();
      for (const name of ["traceparent", "tracestate", "WS-Trace-Parent", "WS-Trace-State"]) {
        expect(ev.headers.get(name), name).toBeUndefined();
      }
      expect(exporter.getFinishedSpans()).toEqual([]);
      expect(trace.getSpanContext(ev.context)?.traceFlags ?? TraceFlags.NONE).toBe(TraceFlags.NONE);
    });

    it.each(["with", "without"])(
      "still passes on the trace context it publishes in (%s a global propagator), to a consumer with an SDK",
      async (propagator) => {
        const consumerSide = await client();
        const { stream, consumer } = await setup(consumerSide);
        // A client of its own: its first span (a publish) is where it finds there is no SDK.
        const producer = await env.client();
        const upstream = trace.setSpanContext(ROOT_CONTEXT, {
          traceId: TRACE_ID,
          spanId: SPAN_ID,
          traceFlags: TraceFlags.SAMPLED,
          isRemote: true,
        });
        if (propagator === "without") propagation.disable();
        try {
          for (const s of ["first", "second"]) {
            await context.with(upstream, () => producer.publish(`${stream}.${s}`, TestEventSchema, {}));
          }
        } finally {
          propagation.setGlobalPropagator(new W3CTraceContextPropagator());
        }
        expect(spans(), "the producer made spans").toEqual([]);

        await using sub = await consumerSide.subscribe(stream, consumer, { schema: TestEventSchema });
        const it = sub[Symbol.asyncIterator]();
        for (const s of ["first", "second"]) {
          const ev = await nextOf(it);
          expect(ev.headers.get("WS-Trace-Parent")).toBe(`00-${TRACE_ID}-${SPAN_ID}-01`);
          await ev.ack();
          const processing = span(`process ${stream}.${s}`);
          expect(processing.spanContext().traceId).toBe(TRACE_ID);
          expect(processing.parentSpanContext).toMatchObject({ spanId: SPAN_ID, isRemote: true });
          expect(processing.links.map((l) => l.context.spanId)).toEqual([SPAN_ID]);
        }
      },
    );

    it("starts tracing once an SDK is registered globally, after the client was created", async () => {
      const events = await env.client();
      const stream = uniqueName();
      await events.ensureStream(stream, { subjects: [`${stream}.>`] });
      await events.publish(`${stream}.a`, TestEventSchema, {});
      expect(spans()).toEqual([]);
      trace.setGlobalTracerProvider(tracerProvider);
      try {
        await env.eventually(
          async () => {
            await events.publish(`${stream}.a`, TestEventSchema, {});
            return spans().some((s) => s.name === `send ${stream}.a`);
          },
          { stepMs: 100, what: "a span through the global provider" },
        );
      } finally {
        trace.disable();
      }
    });
  });
});
