/**
 * Scenario 3: the subscriber's connection runs through a TCP proxy that resets
 * it (or swallows its traffic) while events are in flight.
 */
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { createEvents, type Events } from "../../src/index.js";
import { type NatsServer, startNatsServer } from "../../src/testing/index.js";
import { holdFor, uniqueName, waitFor } from "../helpers.js";
import { recordingLogger } from "../log.js";
import { History, summarize } from "./history.js";
import { startProxy, type TcpProxy } from "./proxy.js";
import { allHandled, connectTo, consume, expectIntact, publishLanes, report, since } from "./support.js";

let server: NatsServer;
let proxy: TcpProxy;
let admin: NatsConnection;
let jsm: JetStreamManager;
let publisher: Events;
const connections: NatsConnection[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  proxy = await startProxy({ port: server.port });
  admin = await connectTo(server.url);
  connections.push(admin);
  jsm = await jetstreamManager(admin);
  publisher = createEvents(admin);
});

afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
  await proxy?.close();
  await server?.stop();
});

async function setup(prefix: string): Promise<string> {
  const stream = uniqueName(prefix);
  await publisher.ensureStream(stream, { subjects: [`${stream}.>`] });
  await publisher.ensureConsumer(stream, { name: "worker", from: { start: true }, processingTimeoutMs: 3_000 });
  return stream;
}

/** Waits until the server holds nothing unacked or undelivered for the consumer. */
async function settledOnServer(stream: string, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      const info = await jsm.consumers.info(stream, "worker");
      return info.num_ack_pending === 0 && info.num_pending === 0 && info.num_redelivered >= 0;
    },
    { timeoutMs, intervalMs: 100, what: "the server to hold no unacked events" },
  );
}

it("cutting the connection while events are in flight: acks are confirmed or the events redelivered", async () => {
  const started = performance.now();
  const stream = await setup("cut");
  const logger = recordingLogger();
  const nc = await connectTo(proxy.url, { ignoreClusterUpdates: true });
  connections.push(nc);
  const events = createEvents(nc, { logger });
  const history = new History();
  const sub = await events.subscribe(stream, "worker", { schema: TestEventSchema });
  const consuming = consume(sub, history);
  let ended = false;
  void consuming.done.then(() => {
    ended = true;
  });
  const publishing = publishLanes(publisher, { stream, lanes: 4, perLane: 1_500, history, ratePerSecond: 1_000 });

  const stalls: number[] = [];
  const acceptedBefore = proxy.accepted;
  for (const threshold of [1_000, 2_500, 4_000]) {
    await waitFor(() => history.deliveries.length >= threshold, {
      timeoutMs: 30_000,
      what: `${threshold} deliveries`,
    });
    const count = history.deliveries.length;
    consuming.gaps.reset();
    const fault = performance.now();
    proxy.cut();
    await waitFor(() => history.deliveries.length > count + 100, {
      timeoutMs: 20_000,
      intervalMs: 10,
      what: "delivery to resume after the cut",
    });
    stalls.push(Math.round(Math.max(0, consuming.gaps.longestEndedAt - fault)));
  }
  const { errors } = await publishing;
  await allHandled(history);
  // An ack lost with the connection must have been retried, or the event
  // redelivered (after the 3 s processing timeout) and acked again.
  await settledOnServer(stream, 20_000);
  const result = history.check();
  report("connection-cut", {
    cuts: 3,
    reconnects: proxy.accepted - acceptedBefore,
    resumeAfterCutMs: stalls.join("/"),
    ackRetries: logger.lines.filter((l) => l.message === "ack failed, retrying").length,
    ackFailures: consuming.ackFailures.toString(),
    publishErrors: errors.toString(),
    tookMs: since(started),
  });
  report("connection-cut", { history: summarize(result) });

  expect(ended).toBe(false);
  expect(proxy.accepted - acceptedBefore).toBeGreaterThanOrEqual(3);
  expect(errors.total).toBe(0);
  expect(result.acked).toBe(6_000);
  expectIntact(result);
  // Each cut can cost at most the pull window (50) plus the acks on the wire.
  expect(result.duplicates).toBeLessThanOrEqual(3 * 100);
  await sub.close();
  expect(await consuming.done).toBeUndefined();
}, 120_000);

it("swallowing the traffic: the stale connection is replaced and delivery resumes", async () => {
  const started = performance.now();
  const stream = await setup("blackhole");
  const logger = recordingLogger();
  // Pings every second, stale after two unanswered: the client notices the black hole.
  const nc = await connectTo(proxy.url, { ignoreClusterUpdates: true, pingInterval: 1_000, maxPingOut: 2 });
  connections.push(nc);
  const events = createEvents(nc, { logger });
  const history = new History();
  const sub = await events.subscribe(stream, "worker", { schema: TestEventSchema });
  const consuming = consume(sub, history);
  const publishing = publishLanes(publisher, { stream, lanes: 2, perLane: 2_000, history, ratePerSecond: 500 });

  await waitFor(() => history.deliveries.length >= 500, { timeoutMs: 20_000, what: "500 deliveries" });
  const count = history.deliveries.length;
  const acceptedBefore = proxy.accepted;
  proxy.blackhole(true);
  // The black hole's length is the fault itself.
  await holdFor(4_000);
  const delivered = history.deliveries.length;
  const lifted = performance.now();
  proxy.blackhole(false);
  await waitFor(() => history.deliveries.length > delivered + 100, {
    timeoutMs: 30_000,
    intervalMs: 10,
    what: "delivery to resume after the black hole",
  });
  const resumeMs = since(lifted);
  const { errors } = await publishing;
  await allHandled(history);
  await settledOnServer(stream, 20_000);
  const result = history.check();
  report("blackhole", {
    holeMs: 4_000,
    reconnects: proxy.accepted - acceptedBefore,
    deliveredDuringHole: delivered - count,
    resumeAfterLiftMs: resumeMs,
    ackFailures: consuming.ackFailures.toString(),
    warnings: logger.lines.filter((l) => l.level === "warn").length,
    tookMs: since(started),
  });
  report("blackhole", { history: summarize(result) });

  expect(errors.total).toBe(0);
  // The client gave up on the silent connection and dialled again.
  expect(proxy.accepted - acceptedBefore).toBeGreaterThanOrEqual(1);
  expectIntact(result);
  expect(result.duplicates).toBeLessThanOrEqual(100);
  await sub.close();
  expect(await consuming.done).toBeUndefined();
}, 120_000);
