/**
 * Processing events with `events.process`: typed handlers, concurrency,
 * retries, dead letters and their replay.
 *
 * Without `NATS_URL` it starts a throwaway nats-server (free port, temporary
 * store); with it, it uses that server. It ensures the `orders` stream, a
 * dead-letter stream `orders-dlq`, a durable consumer of its own and an
 * idempotency bucket, starts a processor with one handler per message type,
 * and publishes a few orders: most go through at once; one fails on its first
 * delivery and succeeds on its second; one names a product the handler does
 * not know and is dead-lettered; one is delivered twice but handled once. It
 * prints the dead letter, fixes the handler's catalogue and replays it.
 *
 * Run it with `npm run example:process`. Safe to run again and again against
 * the same server: each run uses its own order ids, consumer and dead-letter
 * subject.
 */
import { randomBytes } from "node:crypto";
import { fromBinary, isMessage } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import {
  createEvents,
  type Event,
  type Logger,
  type Middleware,
  PermanentError,
  type Processor,
  type ProcessorStats,
  router,
} from "windshift";
import { type NatsServer, startNatsServer } from "windshift/testing";
import { OrderCreatedSchema, OrderShippedSchema } from "../gen/windshift/demo/v1/orders_pb.js";

const STREAM = "orders";
const DEAD_LETTERS = "orders-dlq";
const DEADLINE_MS = 15_000;

function step(text: string): void {
  console.log(`▸ ${text}`);
}

// windshift's own log lines, from warnings up: the dead-lettering shows here.
const logger: Logger = {
  debug() {},
  info() {},
  warn: (message, fields) => console.log(`  ! windshift: ${message} ${JSON.stringify(fields ?? {})}`),
  error: (message, fields) => console.log(`  ! windshift: ${message} ${JSON.stringify(fields ?? {})}`),
};

/** Polls the processor's stats until `done` holds, failing after DEADLINE_MS. */
async function waitForStats(
  processor: Processor,
  what: string,
  done: (stats: ProcessorStats) => boolean,
): Promise<ProcessorStats> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const stats = processor.stats;
    if (done(stats)) return stats;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${DEADLINE_MS} ms waiting for ${what}: ${JSON.stringify(stats)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function main(): Promise<void> {
  const run = randomBytes(3).toString("hex");
  console.log(`windshift process example (run ${run})`);

  let server: NatsServer | undefined;
  let url = process.env.NATS_URL;
  if (url === undefined || url === "") {
    server = await startNatsServer();
    url = server.url;
    step(`started nats-server at ${url} (temporary store, stopped at the end)`);
  }
  const nc = await connect({ servers: url });

  try {
    const events = createEvents(nc, { logger });

    // The same stream as the demo, and a stream that keeps the dead letters.
    await events.ensureStream(STREAM, { subjects: ["orders.>"], maxAgeMs: 7 * 24 * 3_600_000 });
    await events.ensureStream(DEAD_LETTERS, { subjects: ["dlq.orders.>"], maxAgeMs: 7 * 24 * 3_600_000 });
    // This run's own consumer (from the end of the stream) and dead-letter
    // subject, so that it sees and replays only what it publishes.
    const consumer = await events.ensureConsumer(STREAM, { name: `process-${run}`, inactiveThresholdMs: 5 * 60_000 });
    const deadLetterSubject = `dlq.orders.${run}`;
    step(`streams "${STREAM}" and "${DEAD_LETTERS}", durable consumer "${consumer.name}"`);

    // Skips events whose idempotency key was already processed, across
    // redeliveries and restarts: the keys live in the KV bucket (stream
    // KV_orders-processed).
    const once = await events.idempotent("orders-processed", { ttlMs: 3_600_000 });

    // Says so when a delivery's handler did not run: `once` skipped it.
    const handled = new WeakSet<Event>();
    const reportSkips: Middleware = async (event, next) => {
      await next();
      if (!handled.has(event)) {
        console.log(`  ◂ #${event.id} (delivery ${event.deliveryAttempt}): already processed, handler skipped`);
      }
    };
    // Simulates a crash between a handler's work and its ack, for one event
    // on its first delivery: the event comes again, and `once` (inside this
    // middleware) finds its key in the bucket.
    const crashKey = `order-${run}-1-shipped`;
    const crashBeforeAck: Middleware = async (event, next) => {
      await next();
      if (event.headers.idempotencyKey === crashKey && event.deliveryAttempt === 1) {
        console.log(`    (simulated crash before #${event.id} was acked)`);
        throw new Error("connection lost before the ack");
      }
    };

    const catalogue = new Set(["kettle", "mug", "tea"]);
    const flakyOrder = `${run}-2`;
    const handlers = router()
      .on(OrderCreatedSchema, async (order, event) => {
        // `order` is an OrderCreated: the router decoded it by its WS-Data-Type.
        handled.add(event);
        const label = `#${event.id} OrderCreated ${order.orderId} (delivery ${event.deliveryAttempt})`;
        if (order.orderId === flakyOrder && event.deliveryAttempt === 1) {
          console.log(`  ◂ ${label}: stock service timed out, will be retried`);
          throw new Error("stock service timed out");
        }
        for (const item of order.items) {
          if (!catalogue.has(item.sku)) {
            console.log(`  ◂ ${label}: unknown product "${item.sku}", no retry can help`);
            throw new PermanentError(`unknown product "${item.sku}"`);
          }
        }
        const total = order.items.reduce((sum, item) => sum + item.unitPrice * BigInt(item.quantity), 0n);
        console.log(`  ◂ ${label}: reserved ${order.items.length} line(s), total ${total}`);
      })
      .on(OrderShippedSchema, async (shipped, event) => {
        handled.add(event);
        console.log(
          `  ◂ #${event.id} OrderShipped ${shipped.orderId} (delivery ${event.deliveryAttempt}): ` +
            `customer notified, tracking ${shipped.trackingNumber}`,
        );
      });

    const created = [
      { orderId: `${run}-1`, customerId: "ada", items: [{ sku: "kettle", quantity: 1, unitPrice: 3_499n }] },
      {
        orderId: `${run}-2`,
        customerId: "grace",
        items: [
          { sku: "mug", quantity: 4, unitPrice: 899n },
          { sku: "tea", quantity: 2, unitPrice: 650n },
        ],
      },
      { orderId: `${run}-3`, customerId: "linus", items: [{ sku: "gift-card", quantity: 1, unitPrice: 2_500n }] },
    ];
    for (const order of created) {
      // Order 3 goes without an idempotency key: a dead letter keeps the
      // event's key, and the orders stream would drop its replay as a
      // duplicate until its deduplication window (2 minutes) has passed.
      const key = order.orderId.endsWith("-3") ? undefined : `order-${order.orderId}-created`;
      const { id } = await events.publish(
        "orders.created",
        OrderCreatedSchema,
        order,
        key === undefined ? {} : { idempotencyKey: key },
      );
      step(`published OrderCreated ${order.orderId} -> id ${id}`);
    }
    for (const n of [1, 2]) {
      const orderId = `${run}-${n}`;
      const { id } = await events.publish(
        "orders.shipped",
        OrderShippedSchema,
        { orderId, carrier: "postal", trackingNumber: `TN${run}${n}` },
        { idempotencyKey: `order-${orderId}-shipped` },
      );
      step(`published OrderShipped ${orderId} -> id ${id}`);
    }

    const processor = await events.process(STREAM, consumer.name, handlers, {
      concurrency: 4,
      // Events of one order one at a time, in stream order; different orders
      // in parallel. A failed event comes again after its successors: order
      // 2's shipment is handled before its creation's second delivery.
      orderBy: (event) => {
        const data = event.data;
        return isMessage(data, OrderCreatedSchema) || isMessage(data, OrderShippedSchema)
          ? data.orderId
          : event.subject;
      },
      maxAttempts: 3,
      backoff: { initialDelayMs: 100 },
      deadLetter: { subject: deadLetterSubject },
      middleware: [reportSkips, crashBeforeAck, once],
    });
    step(`processing ${STREAM}/${consumer.name}: concurrency 4, by order id, 3 attempts, backoff from 100 ms`);

    const stats = await waitForStats(
      processor,
      "the five events to be settled",
      (s) => s.acked + s.deadLettered === 5 && s.running === 0,
    );
    step(`all settled: ${JSON.stringify(stats)}`);

    // The dead letter: the event's payload and headers, plus why it failed.
    const jsm = await jetstreamManager(nc);
    const dead = await jsm.streams.getMessage(DEAD_LETTERS, { last_by_subj: deadLetterSubject });
    if (dead === null) throw new Error(`no dead letter on ${deadLetterSubject}`);
    step(`dead letter #${dead.seq} in "${DEAD_LETTERS}" on ${dead.subject}:`);
    for (const [name, values] of dead.header) console.log(`    ${name}: ${values.join(", ")}`);
    console.log(`    payload: OrderCreated ${fromBinary(OrderCreatedSchema, dead.data).orderId}`);

    // The fix: the catalogue learns the product. Replay publishes the dead
    // letter to its original subject again, and the processor handles it.
    catalogue.add("gift-card");
    const replay = await events.replayDeadLetters(DEAD_LETTERS, { subject: deadLetterSubject });
    step(
      `catalogue fixed; replayed ${replay.replayed} dead letter(s) ` +
        `(duplicates: ${replay.duplicates.length}, skipped: ${replay.skipped.length})`,
    );
    const after = await waitForStats(processor, "the replayed event to be handled", (s) => s.acked === 5);
    step(`after the replay: ${JSON.stringify(after)}`);

    await processor.close();
    await processor.closed;
    step("processor closed");
  } finally {
    await nc.close();
    step("connection closed");
    if (server !== undefined) {
      await server.stop();
      step("nats-server stopped");
    }
  }
}

main().then(
  () => console.log("done"),
  (err: unknown) => {
    console.error("process example failed:", err);
    process.exitCode = 1;
  },
);
