/**
 * Scenario 2: a 3-node cluster with an R3 stream. The stream leader is killed
 * while events are published (with retries); the consumer leader is killed
 * while events are consumed.
 */
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { createEvents } from "../../src/index.js";
import { uniqueName, waitFor } from "../helpers.js";
import { recordingLogger } from "../log.js";
import { type Cluster, type ClusterNode, startCluster } from "./cluster.js";
import { History, summarize } from "./history.js";
import {
  allHandled,
  collectStatuses,
  connectTo,
  consume,
  expectIntact,
  Gaps,
  publishLanes,
  readStreamKeys,
  report,
  since,
} from "./support.js";

let cluster: Cluster;
let admin: NatsConnection;
let jsm: JetStreamManager;
const connections: NatsConnection[] = [];

async function open(servers: string | string[], pinned = false): Promise<NatsConnection> {
  const nc = await connectTo(servers, pinned ? { ignoreClusterUpdates: true } : {});
  connections.push(nc);
  return nc;
}

beforeAll(async () => {
  cluster = await startCluster();
  admin = await open(cluster.urls);
  // A short timeout: while a leader is dead, polls for the next one must not wait 5 s each.
  jsm = await jetstreamManager(admin, { timeout: 1_000 });
});

afterEach(async () => {
  // Every test starts from a whole, healthy cluster.
  await Promise.all(cluster.nodes.filter((n) => !n.running).map((n) => n.restart()));
  await cluster.waitForMetaLeader();
});

afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
  await cluster?.close();
});

/** Leader changes of a consumer until it is not led by `avoid`. */
async function moveConsumerLeader(stream: string, consumer: string, avoid: ClusterNode): Promise<ClusterNode> {
  for (let i = 0; i < 10; i++) {
    const leader = await cluster.waitForConsumerLeader(jsm, stream, consumer, { current: true });
    if (leader !== avoid) return leader;
    await admin.request(`$JS.API.CONSUMER.LEADER.STEPDOWN.${stream}.${consumer}`, "", { timeout: 5_000 });
    await cluster.waitForConsumerLeader(jsm, stream, consumer, { not: leader });
  }
  throw new Error("the consumer leader did not move away from the stream leader");
}

it("killing the stream leader while publishing with retry: every acked publish is stored exactly once", async () => {
  const started = performance.now();
  const stream = uniqueName("failover_pub");
  const setup = createEvents(admin);
  await setup.ensureStream(stream, { subjects: [`${stream}.>`], replicas: 3 });
  const leader = await cluster.waitForStreamLeader(jsm, stream, { current: true });
  // The publisher talks to a follower: what it rides out is the election, not a reconnect.
  const follower = cluster.nodes.find((n) => n !== leader) as ClusterNode;
  const logger = recordingLogger();
  const events = createEvents(await open(follower.url, true), { logger });

  const history = new History();
  const gaps = new Gaps();
  const publishing = publishLanes(events, {
    stream,
    lanes: 8,
    perLane: 500,
    history,
    // A budget longer than the slowest election seen here (18 s), so that a slow
    // election shows as a stall, not as failed publishes.
    retry: { maxElapsedMs: 60_000 },
    ratePerSecond: 1_000,
    gaps,
  });
  await waitFor(() => history.ackedCount >= 1_000, { timeoutMs: 20_000, what: "1000 acked publishes" });
  gaps.reset();
  const fault = performance.now();
  await leader.kill();
  // Elections on 2.9.10 took 4-18 s here; the server's time, not the SDK's.
  const newLeader = await cluster.waitForStreamLeader(jsm, stream, { not: leader, timeoutMs: 60_000 });
  const electionMs = since(fault);
  const { errors } = await publishing;

  const stored = history.compareStored(await readStreamKeys(admin, stream));
  report("stream-leader-kill", {
    electionMs,
    publishStallMs: gaps.longest,
    retries: logger.lines.filter((l) => l.message === "publish failed, retrying").length,
    publishErrors: errors.toString(),
    oldLeader: leader.name,
    newLeader: newLeader.name,
    acked: history.ackedCount,
    stored: stored.messages,
    tookMs: since(started),
  });

  expect(errors.total, `publishes failed despite retry: ${errors}`).toBe(0);
  expect(history.ackedCount).toBe(4_000);
  expect(stored.storedTwice, "events stored more than once").toEqual([]);
  expect(stored.unexpected, "events stored that nobody was told about").toEqual([]);
  expect(stored.lost, "acked events missing from the stream").toEqual([]);
  expect(stored.mismatched).toEqual([]);
  expect(stored.messages).toBe(4_000);
  expect(history.check().publishOrderViolations).toEqual([]);
}, 180_000);

it("killing the consumer leader while consuming: delivery resumes within a bound, nothing acked is lost", async () => {
  const started = performance.now();
  const stream = uniqueName("failover_sub");
  const setup = createEvents(admin);
  await setup.ensureStream(stream, { subjects: [`${stream}.>`], replicas: 3 });
  await setup.ensureConsumer(stream, { name: "worker", from: { start: true }, processingTimeoutMs: 5_000 });
  const streamLeader = await cluster.waitForStreamLeader(jsm, stream, { current: true });
  const consumerLeader = await moveConsumerLeader(stream, "worker", streamLeader);
  // The subscriber talks to the third node: its connection survives the kill, so
  // only missed heartbeats can tell it the pull is dead.
  const bystander = cluster.nodes.find((n) => n !== streamLeader && n !== consumerLeader) as ClusterNode;
  const logger = recordingLogger();
  const events = createEvents(await open(bystander.url, true), { logger });
  const publisher = createEvents(await open(streamLeader.url, true));

  const history = new History();
  const sub = await events.subscribe(stream, "worker", { schema: TestEventSchema });
  const statuses = collectStatuses(sub);
  const consuming = consume(sub, history);
  let stop = false;
  const publishing = publishLanes(publisher, {
    stream,
    lanes: 4,
    perLane: 100_000,
    history,
    // A budget longer than the slowest election seen here (18 s), so that a slow
    // election shows as a stall, not as failed publishes.
    retry: { maxElapsedMs: 60_000 },
    ratePerSecond: 500,
    stop: () => stop,
  });
  await waitFor(() => history.distinctHandled >= 1_000, { timeoutMs: 20_000, what: "1000 events handled" });
  const handledAtFault = history.deliveries.length;
  consuming.gaps.reset();
  const fault = performance.now();
  await consumerLeader.kill();
  const newLeader = await cluster.waitForConsumerLeader(jsm, stream, "worker", {
    not: consumerLeader,
    timeoutMs: 60_000,
  });
  const electionMs = since(fault);
  // Delivery has resumed once a good run of events is handled after the kill.
  await waitFor(() => history.deliveries.length >= handledAtFault + 1_000, {
    timeoutMs: 60_000,
    intervalMs: 50,
    what: "delivery to resume after the consumer leader was killed",
  });
  const resumedMs = Math.round(consuming.gaps.longestEndedAt - fault);
  // The SDK's share of the outage: from a new leader being there to delivery.
  // (Negative when delivery came back before the poll saw the new leader: 0.)
  const resumedAfterElectionMs = Math.max(0, resumedMs - electionMs);
  stop = true;
  const { errors } = await publishing;
  await allHandled(history);
  const result = history.check();
  report("consumer-leader-kill", {
    electionMs,
    deliveryStallMs: consuming.gaps.longest,
    resumedAfterKillMs: resumedMs,
    resumedAfterElectionMs,
    statuses: statuses.map((s) => s.type).join(",") || "none",
    ackFailures: consuming.ackFailures.toString(),
    publishErrors: errors.toString(),
    oldLeader: consumerLeader.name,
    newLeader: newLeader.name,
    tookMs: since(started),
  });
  report("consumer-leader-kill", { history: summarize(result) });

  // The connection never broke, so the subscriber has to notice the dead pull
  // itself: with a 5 s pull expiry and 2.5 s heartbeats that takes 5–7.5 s, and
  // a consumer-info check that the dead leader leaves unanswered costs up to
  // 5 s more (the status is reported, not required: sometimes the new leader
  // serves the pull before a heartbeat is missed). How long the cluster takes
  // to elect the new leader is the server's business (4–18 s measured here),
  // so the bound is on what comes after it.
  expect(resumedAfterElectionMs).toBeLessThan(15_000);
  expect(errors.total, `publishes failed: ${errors}`).toBe(0);
  expectIntact(result);
  expect(result.publishOrderViolations).toEqual([]);
  // Redelivered: at most what was pulled or unacked at the kill.
  expect(result.duplicates).toBeLessThanOrEqual(200);
  await sub.close();
  expect(await consuming.done).toBeUndefined();
}, 240_000);
