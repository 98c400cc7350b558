/**
 * Processes order events from the `orders` stream through the durable
 * consumer `order-printer`, until Ctrl-C.
 *
 *   NATS_URL=nats://127.0.0.1:4222 node .build/examples/subscribe.js
 */
import { createRegistry, isMessage } from "@bufbuild/protobuf";
import { connect } from "@nats-io/transport-node";
import { createEvents, ErrorCode, isWindshiftError } from "windshift";
import { OrderCreatedSchema, OrderShippedSchema } from "../gen/windshift/demo/v1/orders_pb.js";

const url = process.env.NATS_URL || "nats://127.0.0.1:4222";

// Ctrl-C (or a SIGTERM from a process manager) ends the loop below cleanly:
// the subscription stops pulling and gives back what it had not handed out.
const stop = new AbortController();
process.once("SIGINT", () => stop.abort());
process.once("SIGTERM", () => stop.abort());

const nc = await connect({ servers: url });
try {
  const events = createEvents(nc);
  await events.ensureStream("orders", { subjects: ["orders.>"], maxAgeMs: 7 * 24 * 3_600_000 });
  // A durable consumer keeps its position across restarts; `from` applies
  // only when it is first created.
  const consumer = await events.ensureConsumer("orders", {
    name: "order-printer",
    subjects: ["orders.>"],
    from: { start: true },
    processingTimeoutMs: 30_000,
    maxDeliveryAttempts: 5,
  });

  await using sub = await events.subscribe("orders", consumer.name, {
    registry: createRegistry(OrderCreatedSchema, OrderShippedSchema),
    signal: stop.signal,
  });
  console.log(`waiting for events on orders/${consumer.name} (Ctrl-C to stop)`);

  for await (const event of sub) {
    let data: unknown;
    try {
      data = event.data;
    } catch (err) {
      // A payload that cannot be decoded will not decode next time either.
      if (!isWindshiftError(err, ErrorCode.InvalidData)) throw err;
      console.warn(`#${event.id}: ${err.message}; rejecting for good`);
      await event.reject({ permanent: true });
      continue;
    }
    if (isMessage(data, OrderCreatedSchema)) {
      console.log(`#${event.id} order ${data.orderId} created by ${data.customerId} (${data.items.length} line(s))`);
    } else if (isMessage(data, OrderShippedSchema)) {
      console.log(`#${event.id} order ${data.orderId} shipped, tracking ${data.trackingNumber}`);
    }
    await event.ack();
  }
  console.log("stopped");
} finally {
  await nc.close();
}
