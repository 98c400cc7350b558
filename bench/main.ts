/**
 * `npm run bench`: windshift against hand-written nats.js, with and without a
 * real OpenTelemetry SDK, on one server in one process.
 *
 * Without `NATS_URL` it starts its own nats-server (file storage, temporary
 * store) and stops it at the end. Options:
 *
 *   --quick          a shorter run: 3 rounds, smaller rounds (the default took 19 minutes on the 2-core machine)
 *   --rounds N       rounds per scenario (default 7, quick 3)
 *   --pull N         pull batch: raw max_messages = windshift prefetch (default 100)
 *   --only a,b       run only these scenarios (see SCENARIOS below; `--help` lists them)
 *   --json [path]    the report as JSON, to `path` (the table still goes to stdout) or, without
 *                    a path, to stdout (the table then goes to stderr)
 *   --svg path       the ratios as an SVG bar chart (chart.ts): windshift ÷ each other client per
 *                    scenario, and the PostgreSQL engine ÷ pg-boss, from this run's report
 *   --markdown path  the README's summary table (summary.ts): events/s per client and the ratios,
 *                    the in-memory and PostgreSQL engines under their own rows, from this run's report
 *
 * Scenarios (128 B events unless the id ends in -4k, 4 KiB):
 *
 *   publish-awaited      one publish at a time, each call timed (p50/p99/max)
 *   publish-1, -64, -4096, publish-64-4k
 *                        a bounded window: that many workers, each awaiting its
 *                        publish before the next, so the window stays full
 *   consume-confirmed, consume-fire-and-forget (and -4k)
 *                        drain a pre-filled stream through a fresh consumer:
 *                        decode, ack (confirmed: wait for the server's reply)
 *   process-1, process-64, process-ordered-64
 *                        the same through windshift's `events.process`, with that
 *                        many handlers at once (ordered: one at a time per subject,
 *                        over 8 subjects), confirmed acks; raw runs consume-confirmed's
 *                        loop, the one a processor replaces
 *   memory               the in-memory engine in-process (no server): publish → process → ack
 *                        and publish → subscribe → ack, events/s and heap per event
 *   latency              publish→handler at a fixed rate (2,000 events/s): the
 *                        variant publishes on schedule and consumes its own
 *                        events; each carries its publish time in its payload
 *   postgres             the PostgreSQL engine (createPostgresEvents) against pg-boss on the same
 *                        database (WINDSHIFT_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test),
 *                        alternating round by round, each round in a fresh schema dropped after it:
 *                        publish with 64 in flight, and publish → process → ack (events.process,
 *                        64 handlers, against pg-boss work()); skipped with a note when PostgreSQL
 *                        does not answer (see postgres.ts)
 *   workflow             workflows (no raw equivalent): runs/s of a 3-task workflow (a next, then a
 *                        join on the next task's event), and a 1-task run against an event through
 *                        `events.process` with a trivial handler, µs per task vs µs per event
 *
 * publish-4096 and consume-fire-and-forget also run the ceilings, in the same
 * alternation: the nats.js ceiling (the same work on nats.js's core API alone,
 * see ceiling.ts) and the C client (bench/native/jsbench.c against libnats,
 * compiled on demand into .build/native/, see native.ts; left out with a note
 * without gcc or libnats: `apt-get install -y libnats-dev`).
 *
 * Run through `npm run bench`, which builds the package, compiles bench/ to
 * .build/bench and starts node with --expose-gc (for the retained heap).
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { createEvents } from "windshift";
import { type NatsServer, startNatsServer } from "windshift/testing";
import { CEILING_PULL_BATCH, natsJsCeiling } from "./ceiling.js";
import { formatChart } from "./chart.js";
import {
  type Ceiling,
  type Driver,
  LARGE_PAYLOAD_BYTES,
  type Payload,
  type ProcessMode,
  payloadOf,
  rawDriver,
  SMALL_PAYLOAD_BYTES,
  type VariantName,
  windshiftDriver,
} from "./drivers.js";
import { type MemoryReport, runMemoryBench } from "./memory.js";
import { prepareNativeClient } from "./native.js";
import { createOtelSdk } from "./otel-sdk.js";
import { type PostgresReport, runPostgresBench } from "./postgres.js";
import { type BenchReport, formatReport, type Meta, type TelemetryReport } from "./report.js";
import {
  CONSUME_SUBJECTS,
  type ConsumeStreams,
  deleteConsumeStreams,
  type MissingCeiling,
  type PublishMode,
  prefillConsumeStreams,
  runConsume,
  runLatency,
  runPublish,
  type ScenarioContext,
  type ScenarioResult,
  type TimedScenario,
} from "./scenarios.js";
import { gcAvailable } from "./stats.js";
import { formatSummary } from "./summary.js";
import { assertNoSdkRegistered, measureTelemetryCost, type TelemetryCost } from "./telemetry-cost.js";
import { runWorkflowBench, type WorkflowReport } from "./workflow.js";

interface Args {
  quick: boolean;
  rounds: number | undefined;
  pull: number;
  json: boolean;
  jsonPath: string | undefined;
  svgPath: string | undefined;
  markdownPath: string | undefined;
  only: Set<string> | undefined;
}

const SCENARIOS = [
  "publish-awaited",
  "publish-1",
  "publish-64",
  "publish-4096",
  "publish-64-4k",
  "consume-confirmed",
  "consume-fire-and-forget",
  "consume-confirmed-4k",
  "consume-fire-and-forget-4k",
  "process-1",
  "process-64",
  "process-ordered-64",
  "latency",
  "memory",
  "postgres",
  "workflow",
] as const;
type ScenarioId = (typeof SCENARIOS)[number];
/** The scenarios that also run the ceilings (the nats.js ceiling, the C client). */
const CEILING_SCENARIOS: readonly ScenarioId[] = ["publish-4096", "consume-fire-and-forget", "latency"];
const USAGE = `usage: npm run bench -- [--quick] [--rounds N] [--pull N] [--only ${SCENARIOS.join(",")}] [--json [path]] [--svg path] [--markdown path]`;

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    quick: false,
    rounds: undefined,
    pull: 100,
    json: false,
    jsonPath: undefined,
    svgPath: undefined,
    markdownPath: undefined,
    only: undefined,
  };
  const positive = (flag: string, value: string | undefined): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer\n${USAGE}`);
    return n;
  };
  const path = (flag: string, value: string | undefined): string => {
    if (value === undefined || value === "" || value.startsWith("--"))
      throw new Error(`${flag} needs a path\n${USAGE}`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick") args.quick = true;
    else if (a === "--rounds") args.rounds = positive(a, argv[++i]);
    else if (a === "--pull") args.pull = positive(a, argv[++i]);
    else if (a === "--only") {
      args.only = new Set((argv[++i] ?? "").split(","));
      for (const id of args.only) {
        if (!(SCENARIOS as readonly string[]).includes(id)) throw new Error(`unknown scenario ${id}\n${USAGE}`);
      }
    } else if (a === "--json") {
      args.json = true;
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith("--")) {
        args.jsonPath = next;
        i++;
      }
    } else if (a === "--svg") args.svgPath = path(a, argv[++i]);
    else if (a === "--markdown") args.markdownPath = path(a, argv[++i]);
    else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  return args;
}

/** The end-to-end latency scenario's publish rate, events per second. */
const LATENCY_RATE = 2_000;

/**
 * Runs per round of the 3-task workflow (the 1-task runs and the process
 * loop's events are three times as many: the same number of tasks).
 */
const WORKFLOW_RUNS = 2_000;

/** Events per round, by mode and scenario (runs, for workflow). */
const SIZES = {
  default: {
    counts: {
      "publish-awaited": 10_000,
      "publish-1": 10_000,
      "publish-64": 50_000,
      "publish-4096": 40_000,
      "publish-64-4k": 30_000,
      "consume-confirmed": 30_000,
      "consume-fire-and-forget": 100_000,
      "consume-confirmed-4k": 20_000,
      "consume-fire-and-forget-4k": 50_000,
      "process-1": 20_000,
      "process-64": 50_000,
      "process-ordered-64": 50_000,
      latency: 2 * LATENCY_RATE,
      memory: 200_000,
      postgres: 10_000,
      workflow: WORKFLOW_RUNS,
    },
    rounds: 7,
    microIterations: 200_000,
    microBatches: 7,
  },
  quick: {
    counts: {
      "publish-awaited": 2_000,
      "publish-1": 2_000,
      "publish-64": 10_000,
      "publish-4096": 10_000,
      "publish-64-4k": 6_000,
      "consume-confirmed": 8_000,
      "consume-fire-and-forget": 20_000,
      "consume-confirmed-4k": 5_000,
      "consume-fire-and-forget-4k": 8_000,
      "process-1": 8_000,
      "process-64": 20_000,
      "process-ordered-64": 20_000,
      latency: LATENCY_RATE / 2,
      memory: 50_000,
      postgres: 2_000,
      workflow: WORKFLOW_RUNS / 4,
    },
    rounds: 3,
    microIterations: 50_000,
    microBatches: 5,
  },
} as const satisfies Record<
  string,
  { counts: Record<ScenarioId, number>; rounds: number; microIterations: number; microBatches: number }
>;

function packageVersion(name: string): string {
  try {
    const pkg = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8")) as { version?: string };
    return pkg.version ?? "?";
  } catch {
    return "?";
  }
}

function gitCommit(): string {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { encoding: "utf8" }).trim() !== "";
    return dirty ? `${commit} (src modified)` : commit;
  } catch {
    return "?";
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const mode = args.quick ? "quick" : "default";
  const sizes = SIZES[mode];
  const rounds = args.rounds ?? sizes.rounds;
  // With JSON on stdout, everything for humans goes to stderr.
  const print = args.json && args.jsonPath === undefined ? console.error : console.log;
  const started = performance.now();
  const progress = (text: string) =>
    console.error(`· ${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s  ${text}`);

  const small = payloadOf(SMALL_PAYLOAD_BYTES);
  const large = payloadOf(LARGE_PAYLOAD_BYTES);
  assertNoSdkRegistered();

  let server: NatsServer | undefined;
  let url = process.env.NATS_URL;
  if (url === undefined || url === "") {
    server = await startNatsServer();
    url = server.url;
    progress(`started nats-server at ${url} (file storage, temporary store)`);
  }
  const connections: NatsConnection[] = [];
  const open = async () => {
    const nc = await connect({ servers: url });
    connections.push(nc);
    return nc;
  };
  const sdk = createOtelSdk();
  try {
    const adminNc = await open();
    // Each variant on its own connection, so that one's leftovers never slow another.
    const drivers: Driver[] = [
      rawDriver(await open()),
      windshiftDriver(await open()),
      windshiftDriver(await open(), sdk),
    ];
    const wanted = (id: ScenarioId) => args.only === undefined || args.only.has(id);
    // The ceilings, for the scenarios that run with them.
    const ceilings: Ceiling[] = [];
    const missingCeilings: MissingCeiling[] = [];
    let cClient: string | undefined;
    if (CEILING_SCENARIOS.some(wanted)) {
      ceilings.push(natsJsCeiling(await open()));
      progress("compiling the C client (bench/native/jsbench.c) unless .build/native/ has it");
      const native = await prepareNativeClient(url);
      if (native.available) {
        ceilings.push(native.ceiling);
        cClient = native.description;
      } else {
        missingCeilings.push({ variant: "C client", note: native.note });
        progress(`no C client column: ${native.note}`);
      }
    }
    const ctx: ScenarioContext = {
      drivers,
      ceilings,
      missingCeilings,
      admin: createEvents(adminNc),
      adminNc,
      rounds,
      prefix: `bench_${randomBytes(3).toString("hex")}`,
      async afterRound(variant: VariantName) {
        if (variant === "windshift+sdk") await sdk.flush();
      },
      progress,
    };
    const meta: Meta = {
      date: new Date().toISOString(),
      node: process.version,
      v8: process.versions.v8,
      platform: `${process.platform}-${process.arch}`,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim() ?? "?",
      natsServer: adminNc.info?.version ?? "?",
      server: server === undefined ? url : "own (startNatsServer)",
      storage: "file",
      packages: {
        "@nats-io/jetstream": packageVersion("@nats-io/jetstream"),
        "@opentelemetry/api": packageVersion("@opentelemetry/api"),
        "@opentelemetry/sdk-trace-base": packageVersion("@opentelemetry/sdk-trace-base"),
      },
      commit: gitCommit(),
      mode,
      rounds,
      payloadBytes: [small.bytes, large.bytes],
      latencyRate: LATENCY_RATE,
      pullBatch: args.pull,
      gcExposed: gcAvailable(),
      ...(ceilings.length === 0 && missingCeilings.length === 0
        ? {}
        : { ceilings: { pullBatch: CEILING_PULL_BATCH, ...(cClient === undefined ? {} : { cClient }) } }),
    };

    // Once in the fresh process, as a service without any SDK would run it, and
    // once more after the scenarios (warm, bigger heap, SDK code seen).
    progress("measuring the no-op telemetry calls (fresh process)");
    const fresh = measureTelemetryCost(sizes.microIterations, sizes.microBatches);

    const count = (id: ScenarioId) => sizes.counts[id];
    const publishes: { id: ScenarioId; title: string; mode: PublishMode; payload: Payload; ceilings?: boolean }[] = [
      { id: "publish-awaited", title: "publish, awaited one at a time", mode: { awaited: true }, payload: small },
      { id: "publish-1", title: "publish, 1 in flight", mode: { window: 1 }, payload: small },
      { id: "publish-64", title: "publish, 64 in flight", mode: { window: 64 }, payload: small },
      {
        id: "publish-4096",
        title: "publish, 4,096 in flight",
        mode: { window: 4_096 },
        payload: small,
        ceilings: true,
      },
      { id: "publish-64-4k", title: "publish, 64 in flight", mode: { window: 64 }, payload: large },
    ];
    const consumes: {
      id: ScenarioId;
      title: string;
      confirm: boolean;
      payload: Payload;
      process?: ProcessMode;
      ceilings?: boolean;
    }[] = [
      { id: "consume-confirmed", title: "consume+decode+ack, confirmed", confirm: true, payload: small },
      {
        id: "consume-fire-and-forget",
        title: "consume+decode+ack, fire-and-forget",
        confirm: false,
        payload: small,
        ceilings: true,
      },
      { id: "consume-confirmed-4k", title: "consume+decode+ack, confirmed", confirm: true, payload: large },
      {
        id: "consume-fire-and-forget-4k",
        title: "consume+decode+ack, fire-and-forget",
        confirm: false,
        payload: large,
      },
      {
        id: "process-1",
        title: "events.process, 1 handler, confirmed",
        confirm: true,
        payload: small,
        process: { concurrency: 1 },
      },
      {
        id: "process-64",
        title: "events.process, 64 handlers, confirmed",
        confirm: true,
        payload: small,
        process: { concurrency: 64 },
      },
      {
        id: "process-ordered-64",
        title: `events.process, 64 handlers, orderBy subject (${CONSUME_SUBJECTS} subjects), confirmed`,
        confirm: true,
        payload: small,
        process: { concurrency: 64, orderBy: "subject" },
      },
    ];
    const withPayload = (title: string, payload: Payload) => `${title}, ${payload.label}`;
    const timedScenarios: TimedScenario[] = [];
    const prefilled: ConsumeStreams[] = [];
    const scenarios: ScenarioResult[] = [];
    let after: TelemetryCost;
    let memory: MemoryReport | undefined;
    let postgres: PostgresReport | undefined;
    let workflow: WorkflowReport | undefined;
    try {
      for (const p of publishes.filter((p) => wanted(p.id))) {
        timedScenarios.push(
          await runPublish(ctx, p.id, withPayload(p.title, p.payload), count(p.id), p.mode, p.payload, p.ceilings),
        );
      }
      for (const payload of [small, large]) {
        const group = consumes.filter((c) => wanted(c.id) && c.payload === payload);
        if (group.length === 0) continue;
        const streams = await prefillConsumeStreams(ctx, Math.max(...group.map((c) => count(c.id))), payload);
        prefilled.push(streams);
        for (const c of group) {
          timedScenarios.push(
            await runConsume(
              ctx,
              streams,
              c.id,
              withPayload(c.title, payload),
              count(c.id),
              c.confirm,
              args.pull,
              c.process,
              c.ceilings,
            ),
          );
        }
      }
      if (wanted("latency")) {
        const title = `latency publish→handler at ${LATENCY_RATE.toLocaleString("en-US")}/s, confirmed acks`;
        timedScenarios.push(
          await runLatency(
            ctx,
            "latency",
            withPayload(title, small),
            count("latency"),
            LATENCY_RATE,
            small,
            true,
            args.pull,
          ),
        );
      }
      if (timedScenarios.length > 0 && sdk.spansExported() === 0) {
        throw new Error("the OpenTelemetry SDK exported no spans: it was not in use");
      }
      if (wanted("memory")) memory = await runMemoryBench(count("memory"), rounds, small, progress);
      if (wanted("postgres")) {
        const n = count("postgres");
        postgres = await runPostgresBench({ publish: n, process: n }, rounds, small, progress);
      }
      if (wanted("workflow")) {
        workflow = await runWorkflowBench(await open(), ctx.prefix, count("workflow"), rounds, small, progress);
      }

      progress("measuring the no-op telemetry calls (after the scenarios)");
      after = measureTelemetryCost(sizes.microIterations, sizes.microBatches);

      // All timing is done: now the forced GCs.
      progress("measuring retained heap (an untimed round per variant, forced GCs)");
      for (const t of timedScenarios) scenarios.push(await t.finish());
    } finally {
      for (const streams of prefilled) await deleteConsumeStreams(ctx, streams);
    }
    const ws = (id: string) => scenarios.find((s) => s.id === id)?.variants.find((v) => v.variant === "windshift");
    // The larger of the two measurements, against the measured per-event time.
    const share = (ns: (c: TelemetryCost) => number, perEventUs: number | undefined) =>
      perEventUs === undefined ? Number.NaN : (100 * Math.max(ns(fresh), ns(after))) / (perEventUs * 1_000);
    const telemetry: TelemetryReport = {
      fresh,
      afterScenarios: after,
      publish64Percent: share((c) => c.publishNs, ws("publish-64")?.perEventUs),
      publishAwaitedPercent: share((c) => c.publishNs, (ws("publish-awaited")?.latencyMs?.p50 ?? Number.NaN) * 1_000),
      consumeConfirmedPercent: share((c) => c.consumeNs, ws("consume-confirmed")?.perEventUs),
      consumeFireAndForgetPercent: share((c) => c.consumeNs, ws("consume-fire-and-forget")?.perEventUs),
    };

    const report: BenchReport = {
      meta: { ...meta, durationSec: (performance.now() - started) / 1000 },
      scenarios,
      telemetry,
      ...(memory === undefined ? {} : { memory }),
      ...(postgres === undefined ? {} : { postgres }),
      ...(workflow === undefined ? {} : { workflow }),
    };
    print(formatReport(report));
    if (args.json) {
      const json = `${JSON.stringify(report, null, 2)}\n`;
      if (args.jsonPath === undefined) process.stdout.write(json);
      else {
        await writeFile(args.jsonPath, json);
        progress(`wrote ${args.jsonPath}`);
      }
    }
    if (args.svgPath !== undefined) {
      await writeFile(args.svgPath, formatChart(report));
      progress(`wrote ${args.svgPath}`);
    }
    if (args.markdownPath !== undefined) {
      await writeFile(args.markdownPath, formatSummary(report));
      progress(`wrote ${args.markdownPath}`);
    }
  } finally {
    await sdk.shutdown().catch(() => {});
    for (const nc of connections) await nc.close().catch(() => {});
    await server?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
