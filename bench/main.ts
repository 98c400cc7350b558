/**
 * `npm run bench`: windshift against hand-written nats.js, with and without a
 * real OpenTelemetry SDK, on one server in one process.
 *
 * Without `NATS_URL` it starts its own nats-server (file storage, temporary
 * store) and stops it at the end. Options:
 *
 *   --quick          a short run (about 20 s; the default takes 2–3 minutes)
 *   --rounds N       rounds per scenario (default 7, quick 3)
 *   --pull N         pull batch: raw max_messages = windshift maxPendingEvents (default 100)
 *   --only a,b       run only these scenarios (publish-1, publish-64, consume-confirmed,
 *                    consume-fire-and-forget)
 *   --json [path]    the report as JSON, to stdout (the table then goes to stderr) or to `path`
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
import { calibratePayload, type Driver, rawDriver, type VariantName, windshiftDriver } from "./drivers.js";
import { createOtelSdk } from "./otel-sdk.js";
import { type BenchReport, formatReport, type Meta, type TelemetryReport } from "./report.js";
import {
  type ConsumeStreams,
  deleteConsumeStreams,
  prefillConsumeStreams,
  runConsume,
  runPublish,
  type ScenarioContext,
  type ScenarioResult,
  type TimedScenario,
} from "./scenarios.js";
import { gcAvailable } from "./stats.js";
import { assertNoSdkRegistered, measureTelemetryCost, type TelemetryCost } from "./telemetry-cost.js";

interface Args {
  quick: boolean;
  rounds: number | undefined;
  pull: number;
  json: boolean;
  jsonPath: string | undefined;
  only: Set<string> | undefined;
}

const SCENARIOS = ["publish-1", "publish-64", "consume-confirmed", "consume-fire-and-forget"] as const;
const USAGE = `usage: npm run bench -- [--quick] [--rounds N] [--pull N] [--only ${SCENARIOS.join(",")}] [--json [path]]`;

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { quick: false, rounds: undefined, pull: 100, json: false, jsonPath: undefined, only: undefined };
  const positive = (flag: string, value: string | undefined): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer\n${USAGE}`);
    return n;
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
    } else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  return args;
}

/** Events per round, by mode. */
const SIZES = {
  default: {
    awaited: 10_000,
    window: 50_000,
    confirmed: 30_000,
    fireAndForget: 100_000,
    rounds: 7,
    microIterations: 200_000,
    microBatches: 7,
  },
  quick: {
    awaited: 2_000,
    window: 10_000,
    confirmed: 8_000,
    fireAndForget: 20_000,
    rounds: 3,
    microIterations: 50_000,
    microBatches: 5,
  },
} as const;

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
  const progress = (text: string) => console.error(`· ${text}`);
  const started = performance.now();

  const payloadBytes = calibratePayload();
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
    const ctx: ScenarioContext = {
      drivers,
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
      payloadBytes,
      pullBatch: args.pull,
      gcExposed: gcAvailable(),
    };

    // Once in the fresh process, as a service without any SDK would run it, and
    // once more after the scenarios (warm, bigger heap, SDK code seen).
    progress("measuring the no-op telemetry calls (fresh process)");
    const telemetryNc = drivers[1]?.nc ?? adminNc;
    const fresh = measureTelemetryCost(telemetryNc, sizes.microIterations, sizes.microBatches);

    const wanted = (id: (typeof SCENARIOS)[number]) => args.only === undefined || args.only.has(id);
    const timedScenarios: TimedScenario[] = [];
    const consumeModes = [
      { id: "consume-confirmed", title: "consume+decode+ack, confirmed", confirm: true, count: sizes.confirmed },
      {
        id: "consume-fire-and-forget",
        title: "consume+decode+ack, fire-and-forget",
        confirm: false,
        count: sizes.fireAndForget,
      },
    ] as const;
    const consumes = consumeModes.filter((c) => wanted(c.id));
    let streams: ConsumeStreams | undefined;
    const scenarios: ScenarioResult[] = [];
    let after: TelemetryCost;
    try {
      if (wanted("publish-1")) {
        timedScenarios.push(await runPublish(ctx, "publish-1", "publish, awaited one at a time", sizes.awaited, 1));
      }
      if (wanted("publish-64")) {
        timedScenarios.push(await runPublish(ctx, "publish-64", "publish, 64 in flight", sizes.window, 64));
      }
      if (consumes.length > 0) {
        streams = await prefillConsumeStreams(ctx, Math.max(...consumes.map((c) => c.count)));
        for (const c of consumes) {
          timedScenarios.push(await runConsume(ctx, streams, c.id, c.title, c.count, c.confirm, args.pull));
        }
      }
      if (sdk.spansExported() === 0) throw new Error("the OpenTelemetry SDK exported no spans: it was not in use");

      progress("measuring the no-op telemetry calls (after the scenarios)");
      after = measureTelemetryCost(telemetryNc, sizes.microIterations, sizes.microBatches);

      // All timing is done: now the forced GCs.
      progress("measuring retained heap (an untimed round per variant, forced GCs)");
      for (const t of timedScenarios) scenarios.push(await t.finish());
    } finally {
      if (streams !== undefined) await deleteConsumeStreams(ctx, streams);
    }
    const ws = (id: string) => scenarios.find((s) => s.id === id)?.variants.find((v) => v.variant === "windshift");
    // The larger of the two measurements, against the measured per-event time.
    const share = (ns: (c: TelemetryCost) => number, perEventUs: number | undefined) =>
      perEventUs === undefined ? Number.NaN : (100 * Math.max(ns(fresh), ns(after))) / (perEventUs * 1_000);
    const telemetry: TelemetryReport = {
      fresh,
      afterScenarios: after,
      publish64Percent: share((c) => c.publishNs, ws("publish-64")?.perEventUs),
      publishAwaitedPercent: share((c) => c.publishNs, (ws("publish-1")?.latencyMs?.p50 ?? Number.NaN) * 1_000),
      consumeConfirmedPercent: share((c) => c.consumeNs, ws("consume-confirmed")?.perEventUs),
      consumeFireAndForgetPercent: share((c) => c.consumeNs, ws("consume-fire-and-forget")?.perEventUs),
    };

    const report: BenchReport = {
      meta: { ...meta, durationSec: (performance.now() - started) / 1000 },
      scenarios,
      telemetry,
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
