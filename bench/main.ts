/**
 * `npm run bench`: windshift against hand-written nats.js, with and without a
 * real OpenTelemetry SDK, on one server in one process.
 *
 * Without `NATS_URL` it starts its own nats-server (file storage, temporary
 * store) and stops it at the end. Options:
 *
 *   --quick          a short run (under a minute)
 *   --rounds N       rounds per scenario (default 5, quick 3)
 *   --pull N         pull batch: raw max_messages = windshift maxPendingEvents (default 100)
 *   --json [path]    the report as JSON, to stdout (the table then goes to stderr) or to `path`
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
  deleteConsumeStreams,
  prefillConsumeStreams,
  runConsume,
  runPublish,
  type ScenarioContext,
  type ScenarioResult,
} from "./scenarios.js";
import { collectGarbage } from "./stats.js";
import { assertNoSdkRegistered, measureTelemetryCost } from "./telemetry-cost.js";

interface Args {
  quick: boolean;
  rounds: number | undefined;
  pull: number;
  json: boolean;
  jsonPath: string | undefined;
}

const USAGE = "usage: npm run bench -- [--quick] [--rounds N] [--pull N] [--json [path]]";

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { quick: false, rounds: undefined, pull: 100, json: false, jsonPath: undefined };
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
    else if (a === "--json") {
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
  default: { awaited: 3_000, window: 20_000, consume: 20_000, rounds: 5, microIterations: 200_000, microBatches: 7 },
  quick: { awaited: 600, window: 4_000, consume: 4_000, rounds: 3, microIterations: 50_000, microBatches: 5 },
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
      gcExposed: collectGarbage(),
    };

    const scenarios: ScenarioResult[] = [];
    scenarios.push(await runPublish(ctx, "publish-1", "publish, awaited one at a time", sizes.awaited, 1));
    scenarios.push(await runPublish(ctx, "publish-64", "publish, 64 in flight", sizes.window, 64));
    const streams = await prefillConsumeStreams(ctx, sizes.consume);
    try {
      scenarios.push(
        await runConsume(ctx, streams, "consume-confirmed", "consume+decode+ack, confirmed acks", true, args.pull),
      );
      scenarios.push(
        await runConsume(
          ctx,
          streams,
          "consume-fire-and-forget",
          "consume+decode+ack, fire-and-forget",
          false,
          args.pull,
        ),
      );
    } finally {
      await deleteConsumeStreams(ctx, streams);
    }
    if (sdk.spansExported() === 0) throw new Error("the OpenTelemetry SDK exported no spans: it was not in use");

    progress("measuring the no-op telemetry calls");
    const cost = measureTelemetryCost(drivers[1]?.nc ?? adminNc, sizes.microIterations, sizes.microBatches);
    const ws = (id: string) =>
      scenarios.find((s) => s.id === id)?.variants.find((v) => v.variant === "windshift") ?? undefined;
    const share = (ns: number, perEventUs: number | undefined) =>
      perEventUs === undefined ? Number.NaN : (100 * ns) / (perEventUs * 1_000);
    const telemetry: TelemetryReport = {
      ...cost,
      publish64Percent: share(cost.publishNs, ws("publish-64")?.perEventUs),
      publishAwaitedPercent: share(cost.publishNs, (ws("publish-1")?.latencyMs?.p50 ?? Number.NaN) * 1_000),
      consumeConfirmedPercent: share(cost.consumeNs, ws("consume-confirmed")?.perEventUs),
      consumeFireAndForgetPercent: share(cost.consumeNs, ws("consume-fire-and-forget")?.perEventUs),
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
