import { connect } from "@nats-io/transport-node";
import { createEvents, handle } from "windshift";
import { OrderPlacedSchema } from "../gen/shop/v1/orders_pb.js";

const nc = await connect({ servers: process.env.NATS_URL ?? "127.0.0.1:4222" });
const events = createEvents(nc);

// Declare a stream and a durable consumer: created, or updated to these options.
await events.ensureStream("orders", { subjects: ["orders.>"] });
await events.ensureConsumer("orders", { name: "billing", from: { start: true } });

// Handle each OrderPlaced: return to ack it, throw to have it retried later.
const billing = handle(OrderPlacedSchema, async (order, event) => {
  console.log(`billing ${order.orderId} for ${order.customer}: ${order.totalCents} cents (event #${event.id})`);
});
const processor = await events.process("orders", "billing", billing);

// Publish three orders. The idempotency key makes a repeated publish store nothing.
for (const [i, customer] of ["ada", "grace", "linus"].entries()) {
  const orderId = `order-${i + 1}`;
  const order = { orderId, customer, totalCents: 1_250 * (i + 1) };
  const { id, duplicate } = await events.publish("orders.placed", OrderPlacedSchema, order, {
    idempotencyKey: orderId,
  });
  console.log(`published ${orderId} as event #${id}${duplicate ? " (already stored)" : ""}`);
}

// Wait until every event is handled and acked, then shut down.
await processor.idle({ timeoutMs: 10_000 });
await processor.close();
await events.close();
await nc.drain();
