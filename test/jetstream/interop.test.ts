import { create, toBinary } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { context, createTraceState, isSpanContextValid, ROOT_CONTEXT, TraceFlags, trace } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { Headers } from "../../src/index.js";
import { nextEvent, uniqueName, useServer } from "../helpers.js";
import { useStackContextManager } from "../otel-context.js";

const env = useServer();
let removeContextManager: () => void;
beforeAll(() => {
  removeContextManager = useStackContextManager();
});
afterAll(() => removeContextManager());

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const SPAN_ID = "b7ad6b7169203331";

async function setup(): Promise<{ stream: string; consumer: string }> {
  const stream = uniqueName();
  await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
  const c = await env.events.ensureConsumer(stream, { name: "reader", from: { start: true } });
  return { stream, consumer: c.name };
}

/** Publishes with raw nats.js exactly as windshift-go would. */
async function publishLikeGo(subject: string, headers: Record<string, string>): Promise<void> {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(headers)) h.set(k, v);
  const payload = toBinary(TestEventSchema, create(TestEventSchema, { text: "from go", number: 42n }));
  await env.nc.request(subject, payload, { headers: h, timeout: 5_000 });
}

describe("interop with windshift-go", () => {
  it("reads an event with windshift-go's exact headers (nanosecond time, offset, trace)", async () => {
    const { stream, consumer } = await setup();
    await publishLikeGo(`${stream}.orders`, {
      "WS-Published-Time": "2024-05-06T09:08:09.123456789+02:00",
      "WS-Data-Type": "windshift.test.v1.TestEvent",
      "WS-Trace-Parent": `00-${TRACE_ID}-${SPAN_ID}-01`,
      "WS-Trace-State": "congo=t61rcWkgMzE",
      "Nats-Msg-Id": "go-key-1",
    });
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const ev = await nextEvent(sub[Symbol.asyncIterator]());
    expect(ev.data.text).toBe("from go");
    expect(ev.data.number).toBe(42n);
    expect(ev.type).toBe("windshift.test.v1.TestEvent");
    expect(ev.headers.occurredAt?.toISOString()).toBe("2024-05-06T07:08:09.123Z");
    expect(ev.headers.idempotencyKey).toBe("go-key-1");
    const sc = trace.getSpanContext(ev.context);
    expect(sc).toMatchObject({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED, isRemote: true });
    expect(sc?.traceState?.serialize()).toBe("congo=t61rcWkgMzE");
    await ev.ack();
  });

  it("reads Go's RFC 3339 forms: UTC without fraction, and a bad time as undefined", async () => {
    const { stream, consumer } = await setup();
    await publishLikeGo(`${stream}.a`, {
      "WS-Published-Time": "2024-05-06T07:08:09Z",
      "WS-Data-Type": "windshift.test.v1.TestEvent",
    });
    await publishLikeGo(`${stream}.a`, {
      "WS-Published-Time": "yesterday",
      "WS-Data-Type": "windshift.test.v1.TestEvent",
    });
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    const a = await nextEvent(it);
    const b = await nextEvent(it);
    expect(a.headers.occurredAt?.toISOString()).toBe("2024-05-06T07:08:09.000Z");
    expect(b.headers.occurredAt).toBeUndefined();
    expect(b.data.text).toBe("from go"); // a bad time does not make the event unreadable
    const sc = trace.getSpanContext(a.context);
    expect(sc === undefined || !isSpanContextValid(sc)).toBe(true);
    await a.ack();
    await b.ack();
  });

  it("writes windshift-go's trace headers from the active span context", async () => {
    const { stream, consumer } = await setup();
    const parent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: TraceFlags.SAMPLED,
      traceState: createTraceState("vendor=value"),
    });
    await context.with(parent, () => env.events.publish(`${stream}.a`, TestEventSchema, { text: "traced" }));
    const jsm = await jetstreamManager(env.nc);
    const stored = await jsm.streams.getMessage(stream, { seq: 1 });
    const names = [...(stored?.header.keys() ?? [])].sort();
    expect(names).toEqual([Headers.DataType, Headers.PublishedTime, Headers.TraceParent, Headers.TraceState].sort());
    expect(stored?.header.get(Headers.TraceParent)).toBe(`00-${TRACE_ID}-${SPAN_ID}-01`);
    expect(stored?.header.get(Headers.TraceState)).toBe("vendor=value");

    // And the SDK reads back what it wrote.
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const ev = await nextEvent(sub[Symbol.asyncIterator]());
    expect(trace.getSpanContext(ev.context)?.traceId).toBe(TRACE_ID);
    await ev.ack();
  });

  it("writes no trace headers when there is no span context", async () => {
    const { stream } = await setup();
    await env.events.publish(`${stream}.a`, TestEventSchema, {});
    const jsm = await jetstreamManager(env.nc);
    const stored = await jsm.streams.getMessage(stream, { seq: 1 });
    expect([...(stored?.header.keys() ?? [])].sort()).toEqual([Headers.DataType, Headers.PublishedTime].sort());
  });
});
