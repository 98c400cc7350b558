/**
 * One trace across two services, printed as a waterfall.
 *
 * "checkout" publishes an OrderCreated event inside its own span; "fulfillment"
 * (on its own connection, with its own tracer provider) processes it, does some
 * traced work inside `event.context`, and acks it. Both export to an in-memory
 * collector, and the program prints the collected trace as a waterfall with
 * each span's service, kind and key attributes.
 *
 * Run it with `npm run example:tracing`
 * (with no `NATS_URL` it starts a throwaway nats-server).
 */
import { connect } from "@nats-io/transport-node";
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { createEvents } from "windshift";
import { type NatsServer, startNatsServer } from "windshift/testing";
import { OrderCreatedSchema } from "../gen/windshift/demo/v1/orders_pb.js";

// What an application's OpenTelemetry setup does once at start-up.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const collector = new InMemorySpanExporter();
function providerFor(service: string): BasicTracerProvider {
  return new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": service }),
    spanProcessors: [new SimpleSpanProcessor(collector)],
  });
}

async function main(): Promise<void> {
  let server: NatsServer | undefined;
  let url = process.env.NATS_URL;
  if (!url) {
    server = await startNatsServer();
    url = server.url;
  }
  const stream = `tracing_${Date.now().toString(36)}`;

  // The checkout service.
  const checkoutProvider = providerFor("checkout");
  const checkoutTracer = checkoutProvider.getTracer("checkout");
  const checkoutConnection = await connect({ servers: url });
  const checkout = createEvents(checkoutConnection, { tracerProvider: checkoutProvider });

  // The fulfillment service.
  const fulfillmentProvider = providerFor("fulfillment");
  const fulfillmentTracer = fulfillmentProvider.getTracer("fulfillment");
  const fulfillmentConnection = await connect({ servers: url });
  const fulfillment = createEvents(fulfillmentConnection, { tracerProvider: fulfillmentProvider });

  await checkout.ensureStream(stream, { subjects: [`${stream}.>`], maxAgeMs: 60_000 });
  const consumer = await fulfillment.ensureConsumer(stream, { from: { start: true } });
  collector.reset();

  await checkoutTracer.startActiveSpan("POST /checkout", { kind: SpanKind.SERVER }, async (span) => {
    await checkout.publish(`${stream}.created`, OrderCreatedSchema, { orderId: "1001", customerId: "ada" });
    span.end();
  });

  const sub = await fulfillment.subscribe(stream, consumer.name, { schema: OrderCreatedSchema });
  for await (const event of sub) {
    await context.with(event.context, async () => {
      await fulfillmentTracer.startActiveSpan("reserve stock", async (span) => {
        span.setAttribute("order.id", event.data.orderId);
        await new Promise((resolve) => setTimeout(resolve, 5)); // the handler's "work"
        span.end();
      });
      await event.ack();
    });
    break;
  }
  await sub.close();

  await Promise.all([checkoutConnection.close(), fulfillmentConnection.close()]);
  await server?.stop();
  console.log(waterfall(collector.getFinishedSpans()));
}

/** Renders spans of one trace as an indented waterfall. */
function waterfall(spans: ReadableSpan[]): string {
  const ns = (t: [number, number]) => t[0] * 1e9 + t[1];
  const start = Math.min(...spans.map((s) => ns(s.startTime)));
  const end = Math.max(...spans.map((s) => ns(s.endTime)));
  const width = 40;
  const byParent = new Map<string | undefined, ReadableSpan[]>();
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  for (const s of spans) {
    const parent = s.parentSpanContext?.spanId;
    const key = parent !== undefined && ids.has(parent) ? parent : undefined;
    byParent.set(key, [...(byParent.get(key) ?? []), s]);
  }
  const traceIds = new Set(spans.map((s) => s.spanContext().traceId));
  const lines = [`trace ${[...traceIds].join(", ")} (${((end - start) / 1e6).toFixed(1)} ms)`, ""];
  const walk = (parent: string | undefined, depth: number): void => {
    const children = (byParent.get(parent) ?? []).sort((a, b) => ns(a.startTime) - ns(b.startTime));
    for (const s of children) {
      const from = Math.round(((ns(s.startTime) - start) / (end - start)) * width);
      const to = Math.max(from + 1, Math.round(((ns(s.endTime) - start) / (end - start)) * width));
      const bar = `${" ".repeat(from)}${"█".repeat(to - from)}`.padEnd(width);
      const service = String(s.resource.attributes["service.name"]).padEnd(12);
      const name = `${"  ".repeat(depth)}${s.name}`.padEnd(44);
      const ms = ((ns(s.endTime) - ns(s.startTime)) / 1e6).toFixed(2).padStart(7);
      const kind = SpanKind[s.kind].padEnd(8);
      lines.push(`${service}${name}${kind}|${bar}|${ms} ms`);
      walk(s.spanContext().spanId, depth + 1);
    }
  };
  walk(undefined, 0);
  const interesting = ["messaging.operation.type", "messaging.message.id", "messaging.nats.delivery_attempt"];
  lines.push("");
  for (const s of spans.filter((x) => x.attributes["messaging.system"] !== undefined)) {
    const attrs = interesting
      .filter((k) => s.attributes[k] !== undefined)
      .map((k) => `${k}=${String(s.attributes[k])}`)
      .join(" ");
    const links = s.links.length > 0 ? ` links→${s.links.map((l) => l.context.spanId).join(",")}` : "";
    lines.push(`${s.name.padEnd(40)} span ${s.spanContext().spanId} ${attrs}${links}`);
  }
  return lines.join("\n");
}

await main();
// Spans are exported; nothing else should keep the process alive.
trace.disable();
