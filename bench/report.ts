/**
 * The benchmark's output: a readable table, and the same data as JSON.
 *
 * @module
 */
import type { ScenarioResult } from "./scenarios.js";
import type { TelemetryCost } from "./telemetry-cost.js";

/** Where and how the numbers were taken. */
export interface Meta {
  readonly date: string;
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly natsServer: string;
  readonly server: string;
  readonly storage: "file";
  readonly packages: Readonly<Record<string, string>>;
  readonly commit: string;
  readonly mode: "quick" | "default";
  readonly rounds: number;
  readonly payloadBytes: number;
  /** Pull batch: raw `max_messages` = windshift `maxPendingEvents`. */
  readonly pullBatch: number;
  readonly gcExposed: boolean;
  readonly durationSec?: number;
}

/** The telemetry microbenchmark and what it means against the measured scenarios. */
export interface TelemetryReport extends TelemetryCost {
  /** The no-op publish telemetry as a share of windshift's (no SDK) per-event time with 64 in flight, in %. */
  readonly publish64Percent: number;
  /** ... of windshift's awaited publish latency (p50), in %. */
  readonly publishAwaitedPercent: number;
  /** The no-op consume telemetry (process + settle) as a share of windshift's per-event consume time, in %. */
  readonly consumeConfirmedPercent: number;
  readonly consumeFireAndForgetPercent: number;
}

/** Everything one run measured. */
export interface BenchReport {
  readonly meta: Meta;
  readonly scenarios: readonly ScenarioResult[];
  readonly telemetry: TelemetryReport;
}

const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-");
const fixed = (n: number | undefined, digits: number): string =>
  n === undefined || !Number.isFinite(n) ? "" : n.toFixed(digits);
const kib = (n: number): string =>
  Number.isFinite(n) ? `${n >= 0 ? "+" : ""}${Math.round(n).toLocaleString("en-US")}` : "-";

function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  rightAligned: ReadonlySet<number>,
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** The human-readable report. */
export function formatReport(report: BenchReport): string {
  const m = report.meta;
  const out: string[] = [];
  out.push(
    `windshift bench, ${m.date}`,
    `node ${m.node} (V8 ${m.v8}), ${m.platform}, ${m.cpus} CPUs (${m.cpuModel})`,
    `nats-server ${m.natsServer} at ${m.server}, ${m.storage} storage; ${Object.entries(m.packages)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
    `commit ${m.commit}; ${m.mode} run: ${m.rounds} rounds per scenario, alternating variants, medians shown; ` +
      `payload ${m.payloadBytes} B; pull batch ${m.pullBatch}` +
      (m.durationSec === undefined ? "" : `; took ${Math.round(m.durationSec)} s`) +
      (m.gcExposed ? "" : "; heap figures without --expose-gc are noisy"),
    "",
  );
  const rows: string[][] = [];
  for (const s of report.scenarios) {
    s.variants.forEach((v, i) => {
      const rates = v.roundsMsgsPerSec;
      rows.push([
        i === 0 ? `${s.title} (n=${s.count.toLocaleString("en-US")})` : "",
        v.variant,
        int(v.msgsPerSec),
        `${int(Math.min(...rates))}–${int(Math.max(...rates))}`,
        fixed(v.perEventUs, 1),
        fixed(v.latencyMs?.p50, 3),
        fixed(v.latencyMs?.p99, 3),
        kib(v.heapDeltaKiB),
        kib(v.retainedKiB),
        fixed(v.ratioToRaw, 2),
        fixed(v.ratioToNoSdk, 2),
      ]);
    });
  }
  out.push(
    table(
      [
        "scenario",
        "variant",
        "msgs/s",
        "rounds min–max",
        "µs/event",
        "p50 ms",
        "p99 ms",
        "heap Δ KiB",
        "retained KiB",
        "÷ raw",
        "sdk ÷ no-sdk",
      ],
      rows,
      new Set([2, 3, 4, 5, 6, 7, 8, 9, 10]),
    ),
  );
  const t = report.telemetry;
  out.push(
    "",
    "p50/p99: per-call latency of the awaited publish over all its rounds. heap Δ: heap used at the end of a round",
    "minus at its start after a GC (garbage included); retained: the same after a GC at the end (what the round kept).",
    "÷ raw: median msgs/s over raw's median; sdk ÷ no-sdk: windshift+sdk over windshift.",
    "",
    `Telemetry with no SDK registered (no-op @opentelemetry/api, the calls of src/publish.ts, subscription.ts, event.ts;`,
    `median of ${t.batches} batches of ${t.iterations.toLocaleString("en-US")} iterations):`,
    table(
      ["path", "ns/op", "share of windshift's per-event time"],
      [
        [
          "publish (span, inject, metrics)",
          fixed(t.publishNs, 0),
          `${fixed(t.publish64Percent, 2)} % of publish-64, ${fixed(t.publishAwaitedPercent, 3)} % of an awaited publish (p50)`,
        ],
        ["process (extract, span, counter)", fixed(t.processNs, 0), ""],
        ["settle (ack span, 2 histograms)", fixed(t.settleNs, 0), ""],
        [
          "consume = process + settle",
          fixed(t.consumeNs, 0),
          `${fixed(t.consumeConfirmedPercent, 2)} % of consume (confirmed acks), ` +
            `${fixed(t.consumeFireAndForgetPercent, 2)} % of consume (fire-and-forget)`,
        ],
      ],
      new Set([1]),
    ),
  );
  return `${out.join("\n")}\n`;
}
