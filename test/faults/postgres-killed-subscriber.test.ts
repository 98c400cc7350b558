/**
 * PostgreSQL engine: a subscriber process is SIGKILLed while it holds
 * deliveries it never settled. Another subscriber of the same durable
 * consumer must get them again, as second attempts, once their processing
 * timeout ran out: not before, and not much later.
 *
 * The subscriber is a real `node` process running a build of `src/` made
 * for this file (into a directory of its own under `.build/`, so that the
 * shared `dist/` is left alone).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import type { Events } from "../../src/index.js";
import { createPostgresEvents, ensureSchema } from "../../src/postgres/index.js";
import { uniqueName, waitFor } from "../helpers.js";
import { uniqueSchema } from "../postgres/harness.js";
import { type PostgresServer, startPostgres } from "./postgres-server.js";
import { report, since, within } from "./support.js";

const PROCESSING_TIMEOUT_MS = 2_000;
/** The test process's subscriber looks for due events at least this often. */
const POLL_MS = 250;
/** What the child takes and holds. */
const HELD = 10;
/** Published after the kill, to show the consumer carries on meanwhile. */
const LATER = 5;
/** Scheduling and round trips on a busy two-core machine. */
const SLACK_MS = 750;

const root = join(import.meta.dirname, "..", "..");
const build = join(root, ".build", `faults-pg-${randomUUID().slice(0, 8)}`);
const dist = join(build, "dist");
const childScript = join(import.meta.dirname, "postgres-subscriber-child.mjs");

let server: PostgresServer;
let admin: pg.Pool;
let events: Events;
const schema = uniqueSchema("ws_killed");
const children: ChildProcess[] = [];

beforeAll(async () => {
  const building = performance.now();
  await promisify(execFile)(
    join(root, "node_modules", ".bin", "tsc"),
    ["-p", join(root, "tsconfig.build.json"), "--outDir", dist, "--declaration", "false"],
    { cwd: root, timeout: 110_000 },
  );
  const buildMs = since(building);
  server = await startPostgres();
  report("postgres-killed-subscriber", { buildMs, serverStartMs: server.startMs });
  admin = new pg.Pool({ connectionString: server.url, max: 2 });
  admin.on("error", () => {});
  await ensureSchema(admin, { schema });
  events = createPostgresEvents({ connectionString: server.url, schema, migrate: false, pollIntervalMs: POLL_MS });
}, 120_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await events?.close().catch(() => {});
  await admin?.end().catch(() => {});
  await server?.stop();
  rmSync(build, { recursive: true, force: true });
});

type ChildLine = { type: "ready"; pid: number } | { type: "holding"; events: { id: number; attempt: number }[] };

/** Starts the subscriber process; its stdout lines come through `next`. */
function startChild(stream: string): { child: ChildProcess; next: () => Promise<ChildLine>; exited: Promise<void> } {
  const child = spawn(process.execPath, [childScript, dist, server.url, schema, stream, "worker", String(HELD)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<ChildLine> => {
    const line = await within(lines.next(), 15_000, `the subscriber process to say something (stderr: ${stderr})`);
    if (line.done) throw new Error(`the subscriber process ended (code ${child.exitCode}): ${stderr}`);
    return JSON.parse(line.value) as ChildLine;
  };
  return { child, next, exited };
}

it("a subscriber process killed holding deliveries: they come again to another subscriber after the processing timeout, as attempt 2", async () => {
  const stream = uniqueName("pgkilled");
  await events.ensureStream(stream, { subjects: [`${stream}.>`] });
  await events.ensureConsumer(stream, {
    name: "worker",
    from: { start: true },
    processingTimeoutMs: PROCESSING_TIMEOUT_MS,
  });

  const { child, next, exited } = startChild(stream);
  expect((await next()).type).toBe("ready");

  // The leases start when the child claims, which is after this moment.
  const publishedAt = performance.now();
  for (let i = 0; i < HELD; i++) {
    await events.publish(`${stream}.held`, TestEventSchema, { text: `held-${i}`, number: BigInt(i) });
  }
  const holding = await next();
  // …and before this one.
  const heldAt = performance.now();
  if (holding.type !== "holding") throw new Error(`expected a holding line, got ${JSON.stringify(holding)}`);
  expect(holding.events.map((e) => e.id)).toEqual(Array.from({ length: HELD }, (_, i) => i + 1));
  expect(holding.events.every((e) => e.attempt === 1)).toBe(true);

  child.kill("SIGKILL");
  await exited;
  expect(child.signalCode).toBe("SIGKILL");
  const killedAt = performance.now();
  const before = await events.consumerInfo(stream, "worker");
  expect(before.state.unsettled, "the killed process's deliveries are still leased").toBe(HELD);

  // The second subscriber, in this process, on the same durable consumer.
  const sub = await events.subscribe(stream, "worker", { schema: TestEventSchema });
  const received: { id: number; attempt: number; text: string; at: number }[] = [];
  const consuming = (async () => {
    for await (const event of sub) {
      received.push({ id: event.id, attempt: event.deliveryAttempt, text: event.data.text, at: performance.now() });
      await event.ack();
    }
  })();
  for (let i = 0; i < LATER; i++) {
    await events.publish(`${stream}.later`, TestEventSchema, { text: `later-${i}`, number: BigInt(i) });
  }

  await waitFor(() => received.filter((r) => r.attempt === 2).length >= HELD && received.length >= HELD + LATER, {
    timeoutMs: PROCESSING_TIMEOUT_MS + 10_000,
    what: "the held events to be redelivered and the later ones delivered",
  });
  const redelivered = received.filter((r) => r.id <= HELD);
  const later = received.filter((r) => r.id > HELD);
  const first = Math.min(...redelivered.map((r) => r.at));
  const last = Math.max(...redelivered.map((r) => r.at));
  report("postgres-killed-subscriber", {
    processingTimeoutMs: PROCESSING_TIMEOUT_MS,
    pollIntervalMs: POLL_MS,
    firstRedeliveryAfterPublishMs: first - publishedAt,
    lastRedeliveryAfterHoldingMs: last - heldAt,
    redeliveryAfterKillMs: first - killedAt,
    laterDeliveredAfterKillMs: Math.max(...later.map((r) => r.at)) - killedAt,
    received: received.length,
  });

  // None lost, none twice: the held ones once more as second attempts, the later ones once as first.
  expect(redelivered.map((r) => r.id).sort((a, b) => a - b)).toEqual(holding.events.map((e) => e.id));
  expect(redelivered.every((r) => r.attempt === 2)).toBe(true);
  expect(redelivered.map((r) => r.text).sort()).toEqual(Array.from({ length: HELD }, (_, i) => `held-${i}`).sort());
  expect(later.map((r) => r.id)).toEqual(Array.from({ length: LATER }, (_, i) => HELD + i + 1));
  expect(later.every((r) => r.attempt === 1)).toBe(true);
  // Not before the processing timeout: the leases began after publishedAt.
  expect(first - publishedAt).toBeGreaterThanOrEqual(PROCESSING_TIMEOUT_MS);
  // Not much after it either: they ran out before heldAt + timeout, and the subscriber looks again within pollIntervalMs.
  expect(last - heldAt).toBeLessThanOrEqual(PROCESSING_TIMEOUT_MS + POLL_MS + SLACK_MS);
  // The later events did not wait for the held ones.
  expect(Math.max(...later.map((r) => r.at))).toBeLessThan(first);

  const info = await waitFor(
    async () => {
      const c = await events.consumerInfo(stream, "worker");
      return c.state.lastAckedId === HELD + LATER && c.state.unsettled === 0 ? c : undefined;
    },
    { timeoutMs: 5_000, what: "everything acked" },
  );
  expect(info.state.pending).toBe(0);
  expect(info.state.redelivered).toBe(0);
  await sub.close();
  await consuming;
  expect(received).toHaveLength(HELD + LATER);
}, 60_000);
