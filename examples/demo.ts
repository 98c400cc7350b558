/**
 * The windshift demo: typed events through a stream, end to end.
 *
 * Where it runs, said in its first line:
 * - with `NATS_URL`, on that server;
 * - without it, on a throwaway nats-server (free port, temporary store) when
 *   the binary is installed;
 * - otherwise (or with `--memory`), on the in-memory engine: the same API,
 *   no server.
 *
 * It ensures the `orders` stream and a durable consumer of its own, publishes
 * a few typed events, consumes and acks them, and cleans up after itself.
 *
 * Run it with `npm run demo` (or `npm run demo -- --memory`). Safe to run
 * again and again against the same server: each run uses its own order ids,
 * idempotency keys and consumer.
 */
import { randomBytes } from "node:crypto";
import { createRegistry, isMessage } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { createEvents, ErrorCode, type Events, isWindshiftError, violationsOf } from "windshift";
import { createMemoryEvents, findNatsServer, type NatsServer, startNatsServer } from "windshift/testing";
import { OrderCreatedSchema, OrderShippedSchema } from "../gen/windshift/demo/v1/orders_pb.js";

const STREAM = "orders";
const DEADLINE_MS = 15_000;

function step(text: string): void {
  console.log(`▸ ${text}`);
}

/** Where the demo runs: the client, what to say about it, and how to clean up. */
interface Target {
  readonly events: Events;
  readonly where: string;
  readonly steps: readonly string[];
  close(): Promise<void>;
}

async function openTarget(): Promise<Target> {
  const url = process.env.NATS_URL;
  const forced = process.argv.includes("--memory");
  let binary: string | undefined;
  if (!forced && (url === undefined || url === "")) {
    try {
      binary = findNatsServer();
    } catch {
      // Not installed: the in-memory engine runs the same demo.
    }
  }
  if (forced || ((url === undefined || url === "") && binary === undefined)) {
    const events = createMemoryEvents();
    return {
      events,
      where: forced
        ? "on the in-memory engine (--memory)"
        : "on the in-memory engine: no NATS_URL and no nats-server binary (apt-get install nats-server for JetStream)",
      steps: [],
      close: () => events.close(),
    };
  }
  let server: NatsServer | undefined;
  const steps: string[] = [];
  if (url === undefined || url === "") {
    server = await startNatsServer({ binary: binary as string });
    steps.push(`started nats-server at ${server.url} (temporary store, stopped at the end)`);
  }
  const target = url === undefined || url === "" ? (server as NatsServer).url : url;
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: target });
  } catch (err) {
    await server?.stop();
    throw err;
  }
  steps.push(`connected to ${target} (nats-server ${nc.info?.version ?? "?"})`);
  return {
    events: createEvents(nc),
    where: `on NATS JetStream at ${target}`,
    steps,
    async close() {
      await nc.close();
      step("connection closed");
      if (server !== undefined) {
        await server.stop();
        step("nats-server stopped");
      }
    },
  };
}

async function main(): Promise<void> {
  const run = randomBytes(3).toString("hex");
  const engine = await openTarget();
  console.log(`windshift demo (run ${run}) ${engine.where}`);
  for (const text of engine.steps) step(text);

  try {
    const { events } = engine;

    const stream = await events.ensureStream(STREAM, { subjects: ["orders.>"], maxAgeMs: 7 * 24 * 3_600_000 });
    step(
      `stream "${stream.name}" ${stream.created ? "created" : "already there, config applied"}: ` +
        `subjects ${stream.config.subjects?.join(", ")}, ${stream.config.storage} storage, ` +
        `dedupe window ${stream.config.deduplicationWindowMs} ms`,
    );

    // A consumer of this run's own: it starts at the end of the stream, so it
    // sees what this run publishes and nothing older. The server removes it
    // after five idle minutes.
    const consumer = await events.ensureConsumer(STREAM, {
      name: `demo-${run}`,
      inactiveThresholdMs: 5 * 60_000,
    });
    step(
      `durable consumer "${consumer.name}" ${consumer.created ? "created" : "updated"} ` +
        `(processing timeout ${consumer.config.processingTimeoutMs} ms)`,
    );

    const published = new Set<number>();
    const orders = [
      { orderId: `${run}-1`, customerId: "ada", items: [{ sku: "kettle", quantity: 1, unitPrice: 3_499n }] },
      {
        orderId: `${run}-2`,
        customerId: "grace",
        items: [
          { sku: "mug", quantity: 4, unitPrice: 899n },
          { sku: "tea", quantity: 2, unitPrice: 650n },
        ],
      },
    ];
    for (const order of orders) {
      const placedAt = new Date();
      const created = await events.publish(
        "orders.created",
        OrderCreatedSchema,
        { ...order, placedAt: timestampFromDate(placedAt) },
        { idempotencyKey: `order-${order.orderId}-created`, occurredAt: placedAt },
      );
      published.add(created.id);
      step(`published OrderCreated ${order.orderId} to orders.created -> id ${created.id}`);
    }
    for (const [i, order] of orders.entries()) {
      const shipped = await events.publish(
        "orders.shipped",
        OrderShippedSchema,
        { orderId: order.orderId, carrier: "postal", trackingNumber: `TN${run}${i + 1}` },
        { idempotencyKey: `order-${order.orderId}-shipped` },
      );
      published.add(shipped.id);
      step(`published OrderShipped ${order.orderId} to orders.shipped -> id ${shipped.id}`);
    }

    // Publishing again with the same idempotency key (a retry after a lost
    // reply, say) stores nothing and returns the first event's id.
    const first = orders[0]!;
    const again = await events.publish(
      "orders.created",
      OrderCreatedSchema,
      { ...first },
      { idempotencyKey: `order-${first.orderId}-created` },
    );
    step(`published OrderCreated ${first.orderId} again, same key -> duplicate: ${again.duplicate}, id ${again.id}`);

    // Optimistic concurrency: the write is refused unless the stream's last
    // event is the one we expect. An id we know is stale always fails.
    const lastId = Math.max(...published);
    try {
      await events.publish(
        "orders.shipped",
        OrderShippedSchema,
        { orderId: first.orderId, carrier: "courier" },
        { expectedLastId: lastId - 1 },
      );
      step("unexpected: a publish with a stale expectedLastId was stored");
    } catch (err) {
      if (!isWindshiftError(err, ErrorCode.WrongSequence)) throw err;
      step(`publish with expectedLastId ${lastId - 1} refused: ${err.code}`);
    }

    // The types carry buf.validate rules (proto/windshift/demo/v1/orders.proto):
    // with `validate`, a message that breaks them is refused before anything is sent.
    try {
      await events.publish(
        "orders.created",
        OrderCreatedSchema,
        { orderId: `${run}-3`, customerId: "linus", items: [{ sku: "Kettle!", quantity: 0 }] },
        { validate: true },
      );
      step("unexpected: an order breaking its rules was stored");
    } catch (err) {
      const violations = violationsOf(err);
      if (violations === undefined) throw err;
      step(`publish of an invalid order refused: ${violations.map((v) => `${v.field}: ${v.message}`).join("; ")}`);
    }

    // One consumer, two message types: the registry decodes each event by its
    // WS-Data-Type header.
    const registry = createRegistry(OrderCreatedSchema, OrderShippedSchema);
    const deadline = AbortSignal.timeout(DEADLINE_MS);
    const sub = await events.subscribe(STREAM, consumer.name, { registry, signal: deadline });
    step(`subscribed to ${STREAM}/${consumer.name}`);

    let seen = 0;
    for await (const event of sub) {
      const data = event.data;
      let what = data.$typeName;
      if (isMessage(data, OrderCreatedSchema)) {
        const total = data.items.reduce((sum, item) => sum + item.unitPrice * BigInt(item.quantity), 0n);
        const placed = data.placedAt ? timestampDate(data.placedAt).toISOString() : "?";
        what = `order ${data.orderId} by ${data.customerId}: ${data.items.length} line(s), total ${total}, placed ${placed}`;
      } else if (isMessage(data, OrderShippedSchema)) {
        what = `order ${data.orderId} shipped by ${data.carrier}, tracking ${data.trackingNumber}`;
      }
      console.log(`  ◂ #${event.id} ${event.subject} ${event.type} (delivery ${event.deliveryAttempt})`);
      console.log(`    ${what}; key ${event.headers.idempotencyKey ?? "-"}`);
      await event.ack();
      console.log("    acked");
      if (published.has(event.id)) seen++;
      if (seen === published.size) break; // leaving the loop closes the subscription
    }
    await sub.close();
    if (seen < published.size) {
      throw new Error(`received ${seen} of ${published.size} events within ${DEADLINE_MS} ms`);
    }
    step(`received and acked all ${seen} events; subscription closed`);
  } finally {
    await engine.close();
  }
}

main().then(
  () => console.log("done"),
  (err: unknown) => {
    console.error("demo failed:", err);
    process.exitCode = 1;
  },
);
