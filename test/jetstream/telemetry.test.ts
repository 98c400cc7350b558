import { create, toBinary } from "@bufbuild/protobuf";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { context, propagation, ROOT_CONTEXT, SpanStatusCode, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { createEvents, ErrorCode, type Events } from "../../src/index.js";
import { nextEvent, uniqueName, useServer, windshiftError } from "../helpers.js";
import { useStackContextManager } from "../otel-context.js";

// What only a NATS connection has: the server's address and port and the
// client id on spans, and events written by something other than windshift
// (windshift-go's header spelling, a payload that is not Protobuf). The rest
// of telemetry is in test/conformance/telemetry.test.ts.

const env = useServer();

const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const appTracer = tracerProvider.getTracer("app");
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
});

/** A client on its own connection with the test SDK. */
async function client(): Promise<Events> {
  return createEvents(await env.connect(), { tracerProvider });
}

async function setup(producer: Events): Promise<{ stream: string; consumer: string }> {
  const stream = uniqueName();
  await producer.ensureStream(stream, { subjects: [`${stream}.>`] });
  const c = await producer.ensureConsumer(stream, { name: "worker", from: { start: true } });
  exporter.reset();
  return { stream, consumer: c.name };
}

function span(name: string): ReadableSpan {
  const found = exporter.getFinishedSpans().filter((s) => s.name === name);
  expect(
    found.map((s) => s.name),
    `exactly one span "${name}"`,
  ).toEqual([name]);
  return found[0] as ReadableSpan;
}

describe("traces on NATS", () => {
  it("spans name the server's address and port and the connection's client id", async () => {
    const events = await client();
    const { stream, consumer } = await setup(events);
    await context.with(trace.setSpan(ROOT_CONTEXT, appTracer.startSpan("root")), () =>
      events.publish(`${stream}.a`, TestEventSchema, {}),
    );
    await using sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
    await (await nextEvent(sub[Symbol.asyncIterator]())).ack();
    for (const s of [span(`send ${stream}.a`), span(`process ${stream}.a`), span(`ack ${stream}.a`)]) {
      expect(s.attributes).toMatchObject({
        "messaging.system": "nats",
        "server.address": "127.0.0.1",
        "server.port": env.server.port,
      });
      expect(s.attributes["messaging.client.id"]).toMatch(/^\d+$/);
    }
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

  it("a payload that cannot be decoded marks the process span INVALID_DATA", async () => {
    const events = await client();
    const { stream, consumer } = await setup(events);
    const h = natsHeaders();
    h.set("WS-Data-Type", "windshift.test.v1.TestEvent");
    await env.nc.request(`${stream}.bad`, new Uint8Array([0xff, 0xff]), { headers: h, timeout: 5_000 });
    await using sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
    const ev = await nextEvent(sub[Symbol.asyncIterator]());
    expect((await windshiftError(() => ev.data)).code).toBe(ErrorCode.InvalidData);
    await ev.reject({ permanent: true });
    const processing = span(`process ${stream}.bad`);
    expect(processing.status.code).toBe(SpanStatusCode.ERROR);
    expect(processing.attributes["error.type"]).toBe(ErrorCode.InvalidData);
  });
});
