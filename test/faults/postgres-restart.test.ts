/**
 * PostgreSQL engine: the database is killed (SIGKILL, no shutdown) and
 * restarted while a publisher publishes with idempotency keys and retries
 * and a processor (or a plain subscription) consumes. Nothing acked may be
 * lost, a retried publish must not be stored twice, the consumer must
 * recover by itself and end with everything acked.
 */
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { quoted } from "../../src/engines/postgres/database.js";
import { type Events, handle, type SubscriptionStatus } from "../../src/index.js";
import type { Logger } from "../../src/internal/logger.js";
import { createPostgresEvents, ensureSchema } from "../../src/postgres/index.js";
import { uniqueName, waitFor } from "../helpers.js";
import { uniqueSchema } from "../postgres/harness.js";
import { History, summarize } from "./history.js";
import { type PostgresServer, startPostgres } from "./postgres-server.js";
import { allHandled, consume, expectIntact, Gaps, publishLanes, report, since } from "./support.js";

const LANES = 4;
const PER_LANE = 500;
const COUNT = LANES * PER_LANE;
/** Subscriptions look for events this often without a wake-up: the bound on a recovery's wait. */
const POLL_MS = 250;

let server: PostgresServer;
let admin: pg.Pool;
const schema = uniqueSchema("ws_restart");
const clients: Events[] = [];

beforeAll(async () => {
  server = await startPostgres();
  report("postgres-restart", { serverStartMs: server.startMs });
  admin = new pg.Pool({ connectionString: server.url, max: 2 });
  admin.on("error", () => {});
  await ensureSchema(admin, { schema });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await admin?.end().catch(() => {});
  await server?.stop();
});

/** A logger that keeps what it is told (the engine's warnings and recoveries). */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (message: string) => {
    lines.push(`${level}: ${message}`);
  };
  return { lines, debug: () => {}, info: keep("info"), warn: keep("warn"), error: keep("error") };
}

function client(logger?: Logger): Events {
  const events = createPostgresEvents({
    connectionString: server.url,
    schema,
    migrate: false,
    pollIntervalMs: POLL_MS,
    ...(logger === undefined ? {} : { logger }),
  });
  clients.push(events);
  return events;
}

/** The stream's events by idempotency key, read from its table (as a restart left it). */
async function storedKeys(stream: string): Promise<Map<string, number[]>> {
  const s = quoted(schema);
  const { rows } = await admin.query<{ id: string; msg_id: string | null }>(
    `SELECT e.id, e.msg_id FROM ${s}.events e JOIN ${s}.streams st ON st.id = e.stream WHERE st.name = $1 ORDER BY e.id`,
    [stream],
  );
  const keys = new Map<string, number[]>();
  for (const r of rows) {
    const key = r.msg_id ?? `<no key: ${r.id}>`;
    keys.set(key, [...(keys.get(key) ?? []), Number(r.id)]);
  }
  return keys;
}

/** Collects statuses with the moment each came. */
function timedStatuses(statuses: AsyncIterableIterator<SubscriptionStatus>): { type: string; at: number }[] {
  const seen: { type: string; at: number }[] = [];
  void (async () => {
    for await (const status of statuses) seen.push({ type: status.type, at: performance.now() });
  })();
  return seen;
}

interface Crash {
  /** When the server was killed. */
  killedAt: number;
  /** Kill to accepting queries again. */
  downMs: number;
  /** When the server answered again. */
  upAt: number;
  /** Keys acked last before the kill. */
  ackedBefore: string[];
}

/** Kills the server once consuming is under way, and starts it again. */
async function crashMidway(history: History): Promise<Crash> {
  await waitFor(() => history.ackedCount >= COUNT / 3 && history.distinctHandled >= COUNT / 4, {
    timeoutMs: 30_000,
    what: "publishing and consuming to be under way",
  });
  const ackedBefore = history.ackedKeys().slice(-20);
  const fault = performance.now();
  await server.kill();
  await server.restart();
  return { killedAt: fault, downMs: since(fault), upAt: performance.now(), ackedBefore };
}

/**
 * Publishes again, with the same keys, events acked just before the kill, as
 * a publisher does whose ack was lost in a crash: the crash recovery must
 * have kept the keys, so each is told a duplicate of the acked id and
 * nothing new is stored. Returns how many were duplicates.
 */
async function republish(events: Events, history: History, keys: readonly string[]): Promise<number> {
  let duplicates = 0;
  for (const key of keys) {
    const acked = history.ack(key);
    if (acked === undefined) throw new Error(`${key} was not acked`);
    const ack = await events.publish(
      acked.subject,
      TestEventSchema,
      { text: key, number: BigInt(key.split("-")[1] ?? 0) },
      { idempotencyKey: key, retry: true },
    );
    expect(ack.id, `${key} again`).toBe(acked.id);
    if (ack.duplicate) duplicates++;
  }
  return duplicates;
}

/** The consumer's state once it settled everything: ackFloor at the last event, nothing pending or unsettled. */
async function expectAllAcked(events: Events, stream: string): Promise<void> {
  const info = await waitFor(
    async () => {
      const c = await events.consumerInfo(stream, "worker");
      return c.state.lastAckedId === COUNT && c.state.unsettled === 0 ? c : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 50, what: "the consumer to have acked everything" },
  );
  expect(info.state.lastAckedId).toBe(COUNT);
  expect(info.state.lastDeliveredId).toBe(COUNT);
  expect(info.state.pending).toBe(0);
  expect(info.state.unsettled).toBe(0);
}

/** What both consumers must show after the crash: recovered, every event stored once and handled, all acked. */
async function expectSurvived(after: {
  reconnected: unknown;
  errors: { total: number };
  result: ReturnType<History["check"]>;
  republished: number;
  crash: Crash;
  stored: ReturnType<History["compareStored"]>;
  publisher: Events;
  stream: string;
}): Promise<void> {
  const { reconnected, errors, result, republished, crash, stored, publisher, stream } = after;
  expect(reconnected, "a reconnected status after the restart").toBeDefined();
  expect(errors.total, `publishes failed despite retry: ${errors}`).toBe(0);
  expect(result.acked).toBe(COUNT);
  expectIntact(result);
  // Dedupe: a publish retried across the crash is stored once, under the acked id.
  expect(republished).toBe(crash.ackedBefore.length);
  expect(stored.storedTwice).toEqual([]);
  expect(stored.lost).toEqual([]);
  expect(stored.mismatched).toEqual([]);
  expect(stored.unexpected).toEqual([]);
  expect(stored.messages).toBe(COUNT);
  // Redelivered are at most what was claimed and unsettled at the kill.
  expect(result.duplicates).toBeLessThanOrEqual(200);
  await expectAllAcked(publisher, stream);
}

it("a processor rides out a database crash and restart: nothing acked lost, retried publishes stored once, recovered by itself", async () => {
  const started = performance.now();
  const stream = uniqueName("pgrestart");
  const logger = recordingLogger();
  const consumerSide = client(logger);
  const publisher = client();
  await publisher.ensureStream(stream, { subjects: [`${stream}.>`] });
  await publisher.ensureConsumer(stream, { name: "worker", from: { start: true }, processingTimeoutMs: 5_000 });

  const history = new History();
  const handled = new Gaps();
  const processor = await consumerSide.process(
    stream,
    "worker",
    handle(TestEventSchema, async (_data, event) => {
      handled.mark();
      history.handled({
        key: event.headers.idempotencyKey,
        subject: event.subject,
        id: event.id,
        deliveryAttempt: event.deliveryAttempt,
      });
    }),
    { concurrency: 8 },
  );
  const statuses = timedStatuses(processor.status());
  let stopped = false;
  void processor.closed.then(() => {
    stopped = true;
  });

  const publishing = publishLanes(publisher, {
    stream,
    lanes: LANES,
    perLane: PER_LANE,
    history,
    retry: true,
    ratePerSecond: 500,
  });
  const crash = await crashMidway(history);
  handled.reset();

  const { errors } = await publishing;
  const republished = await republish(publisher, history, crash.ackedBefore);
  await allHandled(history);
  await processor.idle({ timeoutMs: 15_000 });
  const result = history.check();
  const stored = history.compareStored(await storedKeys(stream));
  const reconnected = statuses.find((s) => s.type === "reconnected");
  const duplicateAcks = [...history.ackedKeys()].filter((k) => history.ack(k)?.duplicate === true).length;
  report("postgres-restart", {
    consumer: "process",
    downMs: crash.downMs,
    // From the kill to the consumer claiming again (it may come before restart() sees the server answer).
    recoveryMs: reconnected === undefined ? -1 : reconnected.at - crash.killedAt,
    deliveryStallMs: handled.longest,
    publishErrors: errors.toString(),
    duplicateAcks,
    republishedDuplicates: `${republished}/${crash.ackedBefore.length}`,
    statuses: statuses.map((s) => s.type).join(",") || "none",
    tookMs: since(started),
  });
  report("postgres-restart", {
    consumer: "process",
    history: summarize(result),
    storedTwice: stored.storedTwice.length,
  });
  for (const line of new Set(logger.lines)) report("postgres-restart", { log: JSON.stringify(line) });

  expect(stopped, "the processor stopped by itself").toBe(false);
  expect(logger.lines).toContain("info: claiming deliveries works again");
  await expectSurvived({ reconnected, errors, result, republished, crash, stored, publisher, stream });

  await processor.close();
  await expect(processor.closed).resolves.toBeUndefined();
}, 120_000);

it("a subscription acking each event rides out a database crash and restart", async () => {
  const started = performance.now();
  const stream = uniqueName("pgrestartsub");
  const consumerSide = client();
  const publisher = client();
  await publisher.ensureStream(stream, { subjects: [`${stream}.>`] });
  await publisher.ensureConsumer(stream, { name: "worker", from: { start: true }, processingTimeoutMs: 5_000 });

  const history = new History();
  const sub = await consumerSide.subscribe(stream, "worker", { schema: TestEventSchema });
  const statuses = timedStatuses(sub.status());
  const consuming = consume(sub, history);
  let ended = false;
  void consuming.done.then(() => {
    ended = true;
  });

  const publishing = publishLanes(publisher, {
    stream,
    lanes: LANES,
    perLane: PER_LANE,
    history,
    prefix: "s",
    retry: true,
    ratePerSecond: 500,
  });
  const crash = await crashMidway(history);
  consuming.gaps.reset();

  const { errors } = await publishing;
  const republished = await republish(publisher, history, crash.ackedBefore);
  await allHandled(history);
  const result = history.check();
  const stored = history.compareStored(await storedKeys(stream));
  const reconnected = statuses.find((s) => s.type === "reconnected");
  report("postgres-restart", {
    consumer: "subscribe",
    downMs: crash.downMs,
    // From the kill to the consumer claiming again (it may come before restart() sees the server answer).
    recoveryMs: reconnected === undefined ? -1 : reconnected.at - crash.killedAt,
    deliveryStallMs: consuming.gaps.longest,
    publishErrors: errors.toString(),
    ackFailures: consuming.ackFailures.toString(),
    republishedDuplicates: `${republished}/${crash.ackedBefore.length}`,
    statuses: statuses.map((s) => s.type).join(",") || "none",
    tookMs: since(started),
  });
  report("postgres-restart", {
    consumer: "subscribe",
    history: summarize(result),
    storedTwice: stored.storedTwice.length,
  });

  expect(ended, "the subscription ended by itself").toBe(false);
  // An ack that failed in the crash leaves its event to be redelivered after the processing timeout, and acked then.
  await expectSurvived({ reconnected, errors, result, republished, crash, stored, publisher, stream });

  await sub.close();
  expect(await consuming.done).toBeUndefined();
}, 120_000);
