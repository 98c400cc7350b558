/**
 * The PostgreSQL engine against pg-boss, on the same database, alternating
 * round by round (windshift, then pg-boss), each round in a fresh schema that
 * is dropped after it (so neither inherits the other's tables, dead tuples or
 * a grown heap):
 *
 * - publish, 64 in flight: `events.publish` of a 128 B TestEvent, against
 *   pg-boss `send` of the same encoded bytes as base64 in its JSON data
 *   (`{ "b": "<base64>" }`: the message is encoded with protobuf-es on every
 *   send, as windshift does);
 * - publish → process → ack: `events.process` with a typed handler
 *   (concurrency 64) while a producer keeps 64 publishes in flight, against
 *   pg-boss `work` (see {@link PG_BOSS_WORKERS}) while the same producer
 *   `send`s; from the first publish to the last event handled. Every event
 *   must be handled exactly once (each handler decodes the event and marks its
 *   index), or the round fails.
 *
 * Without a reachable PostgreSQL (`WINDSHIFT_POSTGRES_URL`, default
 * `postgres://postgres@127.0.0.1:5432/test`) the section is skipped with a note.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import pg from "pg";
import PgBoss from "pg-boss";
import { type Events, handle } from "windshift";
import { createPostgresEvents } from "windshift/postgres";
import { TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import { eventData, type Payload } from "./drivers.js";
import { median } from "./stats.js";

/** Publishes awaiting their outcome at once, in both loops. */
export const PG_IN_FLIGHT = 64;
/** windshift's processor: handlers at once. */
export const PG_CONCURRENCY = 64;
/**
 * pg-boss's workers: `work()` called this many times on the queue, each
 * fetching up to {@link PG_BOSS_BATCH} jobs per statement, handing them to
 * the handler as one array and completing them in one statement. pg-boss 10
 * has no `teamSize`: parallel fetches are parallel workers.
 */
export const PG_BOSS_WORKERS = 2;
export const PG_BOSS_BATCH = 100;
/** pg-boss's smallest polling interval; the producer also wakes the workers (`notifyWorker`) after every send. */
const PG_BOSS_POLLING_SECONDS = 0.5;
/** A round that has not handled every event by then fails. */
const ROUND_TIMEOUT_MS = 120_000;

const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test";

export type PostgresVariant = "windshift" | "pg-boss";

/** One scenario's medians and rounds. */
export interface PostgresScenarioResult {
  readonly id: "publish" | "process";
  readonly title: string;
  readonly count: number;
  readonly variants: readonly {
    readonly variant: PostgresVariant;
    readonly eventsPerSec: number;
    readonly roundsEventsPerSec: readonly number[];
  }[];
  /** windshift's median events/s over pg-boss's. */
  readonly ratio: number;
  /** windshift ÷ pg-boss in each round. */
  readonly roundRatios: readonly number[];
}

/** The PostgreSQL section of the report: the results, or why there are none. */
export interface PostgresReport {
  /** The database, without its password. */
  readonly url: string;
  readonly skipped?: string;
  readonly server?: string;
  readonly pgBoss?: string;
  /** pg-boss's settings, in words. */
  readonly pgBossSettings?: string;
  readonly payloadBytes: number;
  readonly rounds: number;
  readonly inFlight: number;
  readonly concurrency: number;
  readonly scenarios: readonly PostgresScenarioResult[];
}

/** What a round is given: a fresh schema's name and the events to move. */
interface Round {
  readonly url: string;
  readonly schema: string;
  readonly count: number;
  readonly payload: Payload;
}

type Loop = (round: Round) => Promise<number>;

/** The URL without a password, for the report. */
function redacted(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return url;
  }
}

/** Runs `publish(i)` for every i below `count`, `PG_IN_FLIGHT` at once. */
async function produce(count: number, publish: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await publish(next++);
  };
  await Promise.all(Array.from({ length: PG_IN_FLIGHT }, worker));
}

/** Marks each event's index once; `all` resolves when every one is, and rejects on a duplicate or at the timeout. */
function tally(count: number) {
  const seen = new Uint8Array(count);
  let handled = 0;
  let finish!: () => void;
  let fail!: (error: Error) => void;
  const all = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const timer = setTimeout(
    () => fail(new Error(`only ${handled} of ${count} events handled in ${ROUND_TIMEOUT_MS / 1000} s`)),
    ROUND_TIMEOUT_MS,
  );
  all.then(
    () => clearTimeout(timer),
    () => clearTimeout(timer),
  );
  return {
    all,
    mark(text: string): void {
      const i = Number(text.slice("event-".length));
      if (!(i >= 0 && i < count)) fail(new Error(`an event not published: ${text}`));
      else if (seen[i] === 1) fail(new Error(`event ${i} handled twice`));
      else {
        seen[i] = 1;
        if (++handled === count) finish();
      }
    },
    fail,
  };
}

function windshiftEvents(round: Round): Events {
  return createPostgresEvents({ connectionString: round.url, schema: round.schema });
}

async function windshiftSetup(events: Events): Promise<void> {
  await events.ensureStream("bench", { subjects: ["bench.>"] });
  await events.ensureConsumer("bench", { name: "worker", from: { start: true } });
}

const windshiftPublish: Loop = async (round) => {
  const events = windshiftEvents(round);
  try {
    await windshiftSetup(events);
    const started = performance.now();
    await produce(round.count, (i) => events.publish("bench.e", TestEventSchema, eventData(i, round.payload)));
    return performance.now() - started;
  } finally {
    await events.close();
  }
};

const windshiftProcess: Loop = async (round) => {
  const events = windshiftEvents(round);
  try {
    await windshiftSetup(events);
    const counted = tally(round.count);
    const processor = await events.process(
      "bench",
      "worker",
      handle(TestEventSchema, (data) => counted.mark(data.text)),
      { concurrency: PG_CONCURRENCY },
    );
    try {
      processor.closed.then((error) => {
        if (error !== undefined) counted.fail(error instanceof Error ? error : new Error(String(error)));
      });
      const started = performance.now();
      await Promise.all([
        produce(round.count, (i) => events.publish("bench.e", TestEventSchema, eventData(i, round.payload))),
        counted.all,
      ]);
      return performance.now() - started;
    } finally {
      await processor.close();
    }
  } finally {
    await events.close();
  }
};

/** pg-boss's job data: the encoded TestEvent, base64. */
interface JobData {
  readonly b: string;
}

function encoded(i: number, payload: Payload): JobData {
  return {
    b: Buffer.from(toBinary(TestEventSchema, create(TestEventSchema, eventData(i, payload)))).toString("base64"),
  };
}

async function startBoss(round: Round): Promise<PgBoss> {
  // No cron and no maintenance during a round: only the queue's own work.
  const boss = new PgBoss({ connectionString: round.url, schema: round.schema, schedule: false, supervise: false });
  boss.on("error", (err) => console.error(`pg-boss: ${String(err)}`));
  await boss.start();
  await boss.createQueue("bench");
  return boss;
}

const bossPublish: Loop = async (round) => {
  const boss = await startBoss(round);
  try {
    const started = performance.now();
    await produce(round.count, (i) => boss.send("bench", encoded(i, round.payload)));
    return performance.now() - started;
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
};

const bossProcess: Loop = async (round) => {
  const boss = await startBoss(round);
  try {
    const counted = tally(round.count);
    const workers: string[] = [];
    for (let w = 0; w < PG_BOSS_WORKERS; w++) {
      workers.push(
        await boss.work<JobData>(
          "bench",
          { batchSize: PG_BOSS_BATCH, pollingIntervalSeconds: PG_BOSS_POLLING_SECONDS },
          async (jobs) => {
            for (const job of jobs) counted.mark(fromBinary(TestEventSchema, Buffer.from(job.data.b, "base64")).text);
          },
        ),
      );
    }
    const started = performance.now();
    await Promise.all([
      produce(round.count, async (i) => {
        await boss.send("bench", encoded(i, round.payload));
        for (const id of workers) boss.notifyWorker(id);
      }),
      counted.all,
    ]);
    return performance.now() - started;
  } finally {
    await boss.stop({ graceful: true, wait: true, timeout: 10_000 });
  }
};

const SCENARIOS: {
  id: PostgresScenarioResult["id"];
  title: string;
  loops: Record<PostgresVariant, Loop>;
}[] = [
  {
    id: "publish",
    title: `publish, ${PG_IN_FLIGHT} in flight`,
    loops: { windshift: windshiftPublish, "pg-boss": bossPublish },
  },
  {
    id: "process",
    title: `publish (${PG_IN_FLIGHT} in flight) → process → ack`,
    loops: { windshift: windshiftProcess, "pg-boss": bossProcess },
  },
];

const VARIANTS: readonly PostgresVariant[] = ["windshift", "pg-boss"];

/** Whether the database answers, and its version; the error's message when not. */
async function probe(url: string): Promise<{ server: string } | { error: string }> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on("error", () => {});
  try {
    await client.connect();
    const r = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    return { server: r.rows[0]?.v ?? "?" };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  } finally {
    await client.end().catch(() => {});
  }
}

function pgBossVersion(): string {
  try {
    return (
      (JSON.parse(readFileSync("node_modules/pg-boss/package.json", "utf8")) as { version?: string }).version ?? "?"
    );
  } catch {
    return "?";
  }
}

/**
 * Both scenarios, `rounds` alternating rounds of `count` events each, after
 * an untimed warm-up round of each loop; skipped (with the reason) when
 * PostgreSQL does not answer.
 */
export async function runPostgresBench(
  counts: { publish: number; process: number },
  rounds: number,
  payload: Payload,
  progress: (text: string) => void,
): Promise<PostgresReport> {
  const url = process.env.WINDSHIFT_POSTGRES_URL || DEFAULT_URL;
  const base = {
    url: redacted(url),
    payloadBytes: payload.bytes,
    rounds,
    inFlight: PG_IN_FLIGHT,
    concurrency: PG_CONCURRENCY,
  };
  const reached = await probe(url);
  if ("error" in reached) {
    progress(`no PostgreSQL section: ${reached.error}`);
    return { ...base, skipped: `PostgreSQL at ${redacted(url)} did not answer (${reached.error})`, scenarios: [] };
  }
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const prefix = `bench_pg_${randomBytes(3).toString("hex")}`;
  let n = 0;
  const inFreshSchema = async (loop: Loop, count: number): Promise<number> => {
    const schema = `${prefix}_${n++}`;
    try {
      return await loop({ url, schema, count, payload });
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  };
  const results: PostgresScenarioResult[] = [];
  try {
    for (const s of SCENARIOS) {
      const count = counts[s.id];
      for (const v of VARIANTS) await inFreshSchema(s.loops[v], Math.min(count, 500));
      const rates: Record<PostgresVariant, number[]> = { windshift: [], "pg-boss": [] };
      for (let round = 1; round <= rounds; round++) {
        for (const v of VARIANTS) {
          const ms = await inFreshSchema(s.loops[v], count);
          const rate = (count * 1000) / ms;
          rates[v].push(rate);
          progress(`postgres ${s.id} ${v} round ${round}/${rounds}: ${Math.round(rate).toLocaleString("en-US")}/s`);
        }
      }
      results.push({
        id: s.id,
        title: s.title,
        count,
        variants: VARIANTS.map((v) => ({ variant: v, eventsPerSec: median(rates[v]), roundsEventsPerSec: rates[v] })),
        ratio: median(rates.windshift) / median(rates["pg-boss"]),
        roundRatios: rates.windshift.map((w, i) => w / (rates["pg-boss"][i] as number)),
      });
    }
  } finally {
    await admin.end().catch(() => {});
  }
  return {
    ...base,
    server: reached.server,
    pgBoss: pgBossVersion(),
    pgBossSettings:
      `${PG_BOSS_WORKERS} workers (work() called ${PG_BOSS_WORKERS} times), batchSize ${PG_BOSS_BATCH}, ` +
      `pollingIntervalSeconds ${PG_BOSS_POLLING_SECONDS} (its minimum) and notifyWorker() after every send; ` +
      "schedule and supervise off; standard queue policy; default pool (10)",
    scenarios: results,
  };
}
