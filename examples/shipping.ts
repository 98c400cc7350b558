/**
 * A small service to test: shipping books a parcel for every order created,
 * then publishes `OrderShipped`. The carrier is a dependency the service is
 * given, so that a test can hand it a fake that fails on cue.
 *
 * `shipping.test.ts` beside it tests this service both ways windshift
 * supports: on the in-memory engine with a test clock (no server, no waiting),
 * and against a real nats-server.
 */
import { type Events, handle, type Processor } from "windshift";
import { OrderCreatedSchema, OrderShippedSchema } from "../gen/windshift/demo/v1/orders_pb.js";

/** Books parcels; may fail (the carrier's API is down, say). */
export interface Carrier {
  book(orderId: string): Promise<{ trackingNumber: string }>;
}

/** The stream, and the durable consumer the service reads through. */
export async function ensureShippingTopology(events: Events): Promise<void> {
  await events.ensureStream("orders", { subjects: ["orders.>"] });
  await events.ensureConsumer("orders", {
    name: "shipping",
    subjects: ["orders.created"],
    from: { start: true },
    processingTimeoutMs: 30_000,
  });
}

/**
 * Starts the service: each order is booked with `carrier`, then announced as
 * shipped. A failed booking is retried after 1 s, 2 s, 4 s…, five attempts at
 * most. The announcement's idempotency key makes a redelivered order (booked
 * again after a crash, say) announce once.
 */
export function startShipping(events: Events, carrier: Carrier): Promise<Processor> {
  return events.process(
    "orders",
    "shipping",
    handle(OrderCreatedSchema, async (order) => {
      const { trackingNumber } = await carrier.book(order.orderId);
      await events.publish(
        "orders.shipped",
        OrderShippedSchema,
        { orderId: order.orderId, carrier: "parcel-co", trackingNumber },
        { idempotencyKey: `order-${order.orderId}-shipped` },
      );
    }),
    { maxAttempts: 5, backoff: { initialDelayMs: 1_000, jitter: 0 } },
  );
}
