/**
 * Scenario 7: the server is frozen (SIGSTOP) for longer than the processing
 * timeout while events flow, then thawed (SIGCONT).
 */
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { createEvents, ErrorCode } from "../../src/index.js";
import { type NatsServer, startNatsServer } from "../../src/testing/index.js";
import { holdFor, pauseProcess, resumeProcess, uniqueName, waitFor } from "../helpers.js";
import { recordingLogger } from "../log.js";
import { History, summarize } from "./history.js";
import {
  allHandled,
  collectStatuses,
  connectTo,
  consume,
  expectIntact,
  publishLanes,
  report,
  since,
} from "./support.js";

const PROCESSING_TIMEOUT_MS = 2_000;
// Longer than the processing timeout, and long enough that the pull's idle
// heartbeats (every 2.5 s, two missed) are missed whatever the phase.
const PAUSE_MS = 8_000;

let server: NatsServer;
const connections: NatsConnection[] = [];

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  // A test that failed mid-pause must not leave the server frozen.
  if (server?.pid > 0) {
    try {
      resumeProcess(server.pid);
    } catch {
      // not running
    }
  }
  await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
  await server?.stop();
});

it("freezing the server longer than the processing timeout: nothing acked is lost, the subscription recovers", async () => {
  const started = performance.now();
  const stream = uniqueName("pause");
  const admin = await connectTo(server.url);
  const nc = await connectTo(server.url);
  connections.push(admin, nc);
  const jsm: JetStreamManager = await jetstreamManager(admin);
  const publisher = createEvents(admin);
  await publisher.ensureStream(stream, { subjects: [`${stream}.>`] });
  await publisher.ensureConsumer(stream, {
    name: "worker",
    from: { start: true },
    processingTimeoutMs: PROCESSING_TIMEOUT_MS,
  });
  const logger = recordingLogger();
  const events = createEvents(nc, { logger });
  const history = new History();
  const sub = await events.subscribe(stream, "worker", { schema: TestEventSchema });
  const statuses = collectStatuses(sub);
  const consuming = consume(sub, history);
  let ended = false;
  void consuming.done.then(() => {
    ended = true;
  });
  let stop = false;
  const publishing = publishLanes(publisher, {
    stream,
    lanes: 2,
    perLane: 100_000,
    history,
    retry: true,
    ratePerSecond: 500,
    stop: () => stop,
  });

  await waitFor(() => history.deliveries.length >= 500, { timeoutMs: 20_000, what: "500 deliveries" });
  await pauseProcess(server.pid);
  // The length of the freeze is the fault itself: longer than the processing timeout.
  await holdFor(PAUSE_MS);
  const count = history.deliveries.length;
  const thawed = performance.now();
  resumeProcess(server.pid);
  await waitFor(() => history.deliveries.length >= count + 500, {
    timeoutMs: 30_000,
    intervalMs: 10,
    what: "delivery to resume after the thaw",
  });
  const resumedMs = Math.round(Math.max(0, consuming.gaps.longestEndedAt - thawed));
  stop = true;
  const { errors } = await publishing;
  await allHandled(history);
  await waitFor(
    async () => {
      const info = await jsm.consumers.info(stream, "worker");
      return info.num_ack_pending === 0 && info.num_pending === 0;
    },
    { timeoutMs: 20_000, intervalMs: 100, what: "the server to hold no unacked events" },
  );
  const result = history.check();
  report("server-pause", {
    pauseMs: PAUSE_MS,
    processingTimeoutMs: PROCESSING_TIMEOUT_MS,
    firstDeliveryAfterThawMs: resumedMs,
    statuses: statuses.map((s) => s.type).join(",") || "none",
    ackFailures: consuming.ackFailures.toString(),
    publishErrors: errors.toString(),
    tookMs: since(started),
  });
  report("server-pause", { history: summarize(result) });

  expect(ended).toBe(false);
  // The stall was noticed and reported, not sat out in silence: by the missed
  // heartbeats of a pull that waited through it or, when the freeze caught the
  // loop awaiting an ack's confirmation with a full buffer and no pull waiting
  // (seen under load), by that ack's TIMEOUT.
  const noticed = [
    ...statuses.map((s) => s.type).filter((t) => t === "heartbeats-missed"),
    ...[...consuming.ackFailures.counts.keys()].filter((c) => c === ErrorCode.Timeout),
  ];
  expect(noticed).not.toEqual([]);
  // A publish may time out while the server is frozen: its outcome is unknown, never lost.
  expect([...errors.counts.keys()].filter((c) => c !== ErrorCode.PublishTimeout)).toEqual([]);
  expectIntact(result);
  expect(result.publishOrderViolations).toEqual([]);
  // Redelivered: what was pulled or unacked when the server froze.
  expect(result.duplicates).toBeLessThanOrEqual(200);
  await sub.close();
  expect(await consuming.done).toBeUndefined();
}, 120_000);
