/**
 * Scenario 1: a single server is killed and restarted on the same store while
 * events are being published and consumed.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { createEvents } from "../../src/index.js";
import { type NatsServer, startNatsServer } from "../../src/testing/index.js";
import { uniqueName, waitFor } from "../helpers.js";
import { History, summarize } from "./history.js";
import {
  allHandled,
  collectStatuses,
  connectTo,
  consume,
  expectIntact,
  Gaps,
  publishLanes,
  report,
  since,
} from "./support.js";

let server: NatsServer;
const connections: NatsConnection[] = [];

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
  await server?.stop();
});

it("restart mid-publish and mid-consume: nothing acked is lost, the subscription resumes by itself", async () => {
  const started = performance.now();
  const stream = uniqueName("restart");
  const nc = await connectTo(server.url);
  connections.push(nc);
  const events = createEvents(nc);
  await events.ensureStream(stream, { subjects: [`${stream}.>`] });
  await events.ensureConsumer(stream, { name: "worker", from: { start: true }, processingTimeoutMs: 5_000 });

  const history = new History();
  const sub = await events.subscribe(stream, "worker", { schema: TestEventSchema });
  const statuses = collectStatuses(sub);
  const consuming = consume(sub, history);
  let ended = false;
  void consuming.done.then(() => {
    ended = true;
  });
  const publishGaps = new Gaps();
  const publishing = publishLanes(events, {
    stream,
    lanes: 4,
    perLane: 1_500,
    history,
    retry: true,
    ratePerSecond: 1_000,
    gaps: publishGaps,
  });

  await waitFor(() => history.ackedCount >= 1_500 && history.distinctHandled >= 1_000, {
    timeoutMs: 20_000,
    what: "publishing and consuming to be under way",
  });
  publishGaps.reset();
  consuming.gaps.reset();
  const fault = performance.now();
  await server.restart();
  const restartMs = since(fault);

  const { errors } = await publishing;
  await allHandled(history);
  const result = history.check();
  report("restart", {
    restartMs,
    publishStallMs: publishGaps.longest,
    deliveryStallMs: consuming.gaps.longest,
    publishErrors: errors.toString(),
    ackFailures: consuming.ackFailures.toString(),
    statuses: statuses.map((s) => s.type).join(",") || "none",
    tookMs: since(started),
  });
  report("restart", { history: summarize(result) });

  expect(ended, "the subscription ended by itself").toBe(false);
  expect(statuses.map((s) => s.type)).toContain("reconnected");
  expect(errors.total, `publishes failed despite retry: ${errors}`).toBe(0);
  expect(result.acked).toBe(6_000);
  expectIntact(result);
  // Each lane waits for one publish before the next: the stream keeps lane order.
  expect(result.publishOrderViolations).toEqual([]);
  // Redelivered are at most what was in flight at the kill: the pull window
  // (50) and the acks the server had not yet written.
  expect(result.duplicates).toBeLessThanOrEqual(200);

  await sub.close();
  expect(await consuming.done).toBeUndefined();
}, 90_000);
