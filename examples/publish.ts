/**
 * Publishes typed order events to the `orders` stream.
 *
 *   NATS_URL=nats://127.0.0.1:4222 node .build/examples/publish.js [count]
 *
 * Pair it with `subscribe.js` in another terminal.
 */
import { randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { connect } from "@nats-io/transport-node";
import { createEvents } from "windshift";
import { OrderCreatedSchema, OrderShippedSchema } from "../gen/windshift/demo/v1/orders_pb.js";

const url = process.env.NATS_URL || "nats://127.0.0.1:4222";
const count = Number(process.argv[2] ?? 3);
if (!Number.isSafeInteger(count) || count < 1)
  throw new TypeError(`count must be a whole number >= 1, got ${process.argv[2]}`);

const nc = await connect({ servers: url });
try {
  const events = createEvents(nc);
  await events.ensureStream("orders", { subjects: ["orders.>"], maxAgeMs: 7 * 24 * 3_600_000 });

  for (let i = 0; i < count; i++) {
    const orderId = randomUUID();
    const placedAt = new Date();
    // The idempotency key makes the publish safe to retry: `retry: true`
    // resends on no responders and timeouts, and the stream stores it once.
    const created = await events.publish(
      "orders.created",
      OrderCreatedSchema,
      {
        orderId,
        customerId: `customer-${i % 3}`,
        items: [{ sku: "widget", quantity: i + 1, unitPrice: 1_250n }],
        placedAt: timestampFromDate(placedAt),
      },
      { idempotencyKey: `${orderId}/created`, occurredAt: placedAt, retry: true },
    );
    console.log(`OrderCreated ${orderId} -> id ${created.id}${created.duplicate ? " (duplicate)" : ""}`);

    const shipped = await events.publish(
      "orders.shipped",
      OrderShippedSchema,
      { orderId, carrier: "postal", trackingNumber: `TN-${i}` },
      { idempotencyKey: `${orderId}/shipped`, retry: true },
    );
    console.log(`OrderShipped ${orderId} -> id ${shipped.id}${shipped.duplicate ? " (duplicate)" : ""}`);
  }
} finally {
  await nc.close();
}
