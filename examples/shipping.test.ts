/**
 * Testing a service that uses windshift, both ways (run with `npm test`):
 *
 * 1. On the in-memory engine with a test clock: no server, no ports, and time
 *    moves only when the test says so — a retry 1 s later, or a redelivery
 *    after a 30 s processing timeout, takes no time at all. The same `Events`
 *    API as in production, so the service's code runs unchanged.
 * 2. Against a real nats-server started for the test file: slower, and it
 *    proves the wiring against JetStream itself.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEvents, type Events } from "windshift";
import { createMemoryEvents, createTestClock, type NatsServer, startNatsServer } from "windshift/testing";
import { OrderCreatedSchema, OrderShippedSchema } from "../gen/windshift/demo/v1/orders_pb.js";
import { type Carrier, ensureShippingTopology, startShipping } from "./shipping.js";

/** A carrier whose API fails the first `failures` calls. */
function flakyCarrier(failures: number): Carrier & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async book(orderId) {
      calls.push(orderId);
      if (calls.length <= failures) throw new Error("carrier API unavailable");
      return { trackingNumber: `TN-${orderId}` };
    },
  };
}

/** Reads the first `count` `OrderShipped` events through a consumer of the test's own, failing after 5 s. */
async function shipped(events: Events, count: number): Promise<string[]> {
  const { name } = await events.ensureConsumer("orders", { subjects: ["orders.shipped"], from: { start: true } });
  await using sub = await events.subscribe("orders", name, {
    schema: OrderShippedSchema,
    signal: AbortSignal.timeout(5_000),
  });
  const found: string[] = [];
  for await (const event of sub) {
    found.push(event.data.trackingNumber);
    await event.ack();
    if (found.length === count) break;
  }
  return found;
}

describe("shipping, on the in-memory engine with a test clock", () => {
  it("retries a failed booking after the backoff, and ships once", async () => {
    const clock = createTestClock();
    await using events = createMemoryEvents({ clock });
    await ensureShippingTopology(events);
    const carrier = flakyCarrier(1);
    await using _shipping = await startShipping(events, carrier);

    await events.publish("orders.created", OrderCreatedSchema, { orderId: "42" });
    await clock.advance(0); // the first attempt runs, and fails
    expect(carrier.calls).toEqual(["42"]);

    await clock.advance(999); // the backoff is 1 s: nothing yet
    expect(carrier.calls).toEqual(["42"]);
    await clock.advance(1); // now the retry runs, and succeeds
    expect(carrier.calls).toEqual(["42", "42"]);
    expect(await shipped(events, 1)).toEqual(["TN-42"]);
  });

  it("an order taken by a worker that died comes back after the processing timeout", async () => {
    const clock = createTestClock();
    await using events = createMemoryEvents({ clock });
    await ensureShippingTopology(events);
    await events.publish("orders.created", OrderCreatedSchema, { orderId: "7" });
    {
      // A worker takes the order and dies before acking it: leaving the loop does not give the event back.
      await using crashed = await events.subscribe("orders", "shipping", { schema: OrderCreatedSchema });
      for await (const event of crashed) {
        expect(event.deliveryAttempt).toBe(1);
        break;
      }
    }
    const carrier = flakyCarrier(0);
    await using _shipping = await startShipping(events, carrier);
    await clock.advance(29_999); // the order is still the dead worker's
    expect(carrier.calls).toEqual([]);
    await clock.advance(1); // its 30 s processing timeout is over: redelivered
    expect(carrier.calls).toEqual(["7"]);
  });
});

describe("shipping, against a real nats-server", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let events: Events;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    events = createEvents(nc);
  });
  afterAll(async () => {
    await events?.close();
    await nc?.close(); // the connection is the service's own: windshift never closes it
    await server?.stop();
  });

  it("ships an order, retrying the carrier after its failure (in real time: about 1 s)", async () => {
    await ensureShippingTopology(events);
    const carrier = flakyCarrier(1);
    await using shipping = await startShipping(events, carrier);
    await events.publish("orders.created", OrderCreatedSchema, { orderId: "42" });
    // Real time: idle once the retry, a second later, has booked the parcel and announced it.
    await shipping.idle({ timeoutMs: 5_000 });
    expect(carrier.calls).toEqual(["42", "42"]);
    expect(await shipped(events, 1)).toEqual(["TN-42"]);
  });
});
