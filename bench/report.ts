/**
 * The benchmark's output: a readable table, and the same data as JSON.
 *
 * @module
 */

import type { CeilingVariant, VariantName } from "./drivers.js";
import type { MemoryReport } from "./memory.js";
import { NATIVE_INSTALL_HINT } from "./native.js";
import type { PostgresReport } from "./postgres.js";
import type { CeilingComparison, ScenarioResult } from "./scenarios.js";
import type { TelemetryCost } from "./telemetry-cost.js";
import type { WorkflowReport } from "./workflow.js";

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
  /** The encoded event sizes used (each scenario says which). */
  readonly payloadBytes: readonly number[];
  /** The end-to-end latency scenario's publish rate, events per second. */
  readonly latencyRate: number;
  /** Pull batch: raw `max_messages` = windshift `prefetch`. */
  readonly pullBatch: number;
  readonly gcExposed: boolean;
  /**
   * When a scenario ran with the ceilings: their pull batch, and the C client's
   * build when it ran (when not, each scenario's `ceilings` says why).
   */
  readonly ceilings?: { readonly pullBatch: number; readonly cClient?: string };
  readonly durationSec?: number;
}

/** The telemetry microbenchmark and what it means against the measured scenarios. */
export interface TelemetryReport {
  /** Measured first, in the fresh process (as in a service that never loads an SDK). */
  readonly fresh: TelemetryCost;
  /** Measured again after the scenarios (warm JIT, bigger heap, the SDK's code has run in this process). */
  readonly afterScenarios: TelemetryCost;
  // The shares below use the larger of the two measurements.
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
  /** The in-memory engine's loops, when run. */
  readonly memory?: MemoryReport;
  /** The PostgreSQL engine against pg-boss, when run (with `skipped` when PostgreSQL did not answer). */
  readonly postgres?: PostgresReport;
  /** The workflow loops on JetStream, when run. */
  readonly workflow?: WorkflowReport;
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
      `payloads ${m.payloadBytes.join(" and ")} B (encoded events); pull batch ${m.pullBatch}` +
      (m.durationSec === undefined ? "" : `; took ${Math.round(m.durationSec)} s`) +
      (m.gcExposed ? "" : "; no --expose-gc: no retained heap"),
    "",
  );
  const rows: string[][] = [];
  const range = (values: readonly number[], format: (n: number) => string) =>
    values.length === 0 ? "" : `${format(Math.min(...values))}–${format(Math.max(...values))}`;
  for (const s of report.scenarios) {
    s.variants.forEach((v, i) => {
      rows.push([
        i === 0 ? `${s.title} (n=${s.count.toLocaleString("en-US")})` : "",
        v.variant,
        int(v.msgsPerSec),
        range(v.roundsMsgsPerSec, int),
        fixed(v.perEventUs, 1),
        fixed(v.latencyMs?.p50, 3),
        fixed(v.latencyMs?.p99, 3),
        fixed(v.latencyMs?.max, 3),
        kib(v.heapPeakKiB),
        kib(v.retainedKiBPer100k),
        fixed(v.ratioToRaw, 2),
        range(v.roundRatiosToRaw ?? [], (n) => fixed(n, 2)),
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
        "max ms",
        "heap peak Δ KiB",
        "retained KiB/100k",
        "÷ raw",
        "÷ raw rounds",
        "sdk ÷ no-sdk",
      ],
      rows,
      new Set([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    ),
  );
  const t = report.telemetry;
  const f = t.fresh;
  const a = t.afterScenarios;
  const pct = (n: number, what: string) => (Number.isFinite(n) ? `${n.toFixed(2)} % of ${what}` : "");
  out.push(
    "",
    "n: events per round. N in flight: N workers, each awaiting its publish before the next. p50/p99/max: per-call",
    "latency of the awaited publish, and publish call → handler for the latency scenario (there, msgs/s is the paced",
    `rate achieved, ${m.latencyRate.toLocaleString("en-US")}/s asked, counted from the first publish to the last event handled), over all rounds' events.`,
    "heap peak Δ: the most heap used during a round (sampled every 5 ms, garbage included) minus at its start, median",
    "of the rounds. retained KiB/100k: heap kept by an extra untimed round of n events, forced GC at both ends, run",
    "after all timing (a forced GC slows V8 down), scaled to 100,000 events; near zero means memory does not grow with",
    "the number of events. ÷ raw: median msgs/s over raw's median; ÷ raw rounds: the lowest and highest of the",
    "per-round ratios (each round runs raw, windshift, windshift+sdk in turn, then the ceilings where they run); sdk ÷",
    "no-sdk: windshift+sdk over windshift.",
    "events.process: raw has no processor; it runs the consume loop (one event at a time, decode, ack), the loop a",
    "processor replaces, so ÷ raw there is the processor against that loop.",
    ...formatCeilings(report),
    "",
    "Telemetry with no SDK registered: the calls publish/, consume/open-subscription.ts, settler.ts and event.ts make, against the no-op",
    `@opentelemetry/api (median of ${f.batches} batches of ${f.iterations.toLocaleString("en-US")} iterations; ` +
      "share: the larger figure over windshift's per-event time above):",
    table(
      ["path", "ns/op fresh", "ns/op after", "share of windshift's (no SDK) per-event time"],
      [
        [
          "publish: inject (metrics: SDK only)",
          fixed(f.publishNs, 0),
          fixed(a.publishNs, 0),
          [pct(t.publish64Percent, "publish-64"), pct(t.publishAwaitedPercent, "an awaited publish (p50)")]
            .filter(Boolean)
            .join(", "),
        ],
        ["process: extract (counter: SDK only)", fixed(f.processNs, 0), fixed(a.processNs, 0), ""],
        ["settle (histograms: SDK only)", fixed(f.settleNs, 0), fixed(a.settleNs, 0), ""],
        [
          "consume = process + settle",
          fixed(f.consumeNs, 0),
          fixed(a.consumeNs, 0),
          [
            pct(t.consumeConfirmedPercent, "consume, confirmed"),
            pct(t.consumeFireAndForgetPercent, "consume, fire-and-forget"),
          ]
            .filter(Boolean)
            .join(", "),
        ],
      ],
      new Set([1, 2]),
    ),
  );
  if (report.memory !== undefined) out.push("", ...formatMemory(report.memory));
  if (report.postgres !== undefined) out.push("", ...formatPostgres(report.postgres));
  if (report.workflow !== undefined) out.push("", ...formatWorkflow(report.workflow));
  return `${out.join("\n")}\n`;
}

/** The scenarios whose figures are latencies (the latency scenario), not throughput. */
const isLatencyScenario = (s: ScenarioResult) => s.variants.some((v) => v.latencyMs !== undefined);

/**
 * The ceilings' tables, for the scenarios run with them: throughput (msgs/s),
 * and latency (p50/p99) for the latency scenario; nothing when none was.
 */
function formatCeilings(report: BenchReport): string[] {
  const scenarios = report.scenarios.filter((s) => s.ceilings !== undefined && s.ceilings.length > 0);
  if (scenarios.length === 0) return [];
  const throughput = scenarios.filter((s) => !isLatencyScenario(s));
  const latency = scenarios.filter(isLatencyScenario);
  const variantOf = (s: ScenarioResult, variant: VariantName) => s.variants.find((v) => v.variant === variant);
  const rateOf = (s: ScenarioResult, variant: VariantName) => variantOf(s, variant)?.msgsPerSec;
  const notes = new Map<string, number>();
  const noteMark = (note: string) => {
    if (!notes.has(note)) notes.set(note, notes.size + 1);
    return `n/a (${notes.get(note)})`;
  };
  const comparisonOf = (s: ScenarioResult, variant: CeilingVariant) => s.ceilings?.find((c) => c.variant === variant);
  const ratio = (c: CeilingComparison | undefined) => {
    if (c === undefined) return "";
    if (c.missing !== undefined) return noteMark(`${c.variant}: ${c.missing}`);
    const rounds = c.windshiftRoundRatios ?? [];
    const range = rounds.length === 0 ? "" : ` (${fixed(Math.min(...rounds), 2)}–${fixed(Math.max(...rounds), 2)})`;
    return `${fixed(c.windshiftRatio, 2)}${range}`;
  };
  const rows = throughput.map((s) => {
    const comparison = (variant: CeilingVariant) => comparisonOf(s, variant);
    const rateCell = (variant: CeilingVariant) => {
      const missing = comparison(variant)?.missing;
      if (missing !== undefined) return noteMark(`${variant}: ${missing}`);
      const r = rateOf(s, variant);
      return r === undefined ? "" : int(r);
    };
    return [
      `${s.title} (n=${s.count.toLocaleString("en-US")})`,
      int(rateOf(s, "raw") ?? Number.NaN),
      int(rateOf(s, "windshift") ?? Number.NaN),
      rateCell("nats.js ceiling"),
      rateCell("C client"),
      ratio(comparison("nats.js ceiling")),
      ratio(comparison("C client")),
    ];
  });
  // Latency: p50 / p99 in ms per variant; windshift ÷ C per percentile (no per-round figures: the
  // percentiles are over all rounds' events).
  const percentiles = (s: ScenarioResult, variant: VariantName) => {
    const l = variantOf(s, variant)?.latencyMs;
    return l === undefined ? "" : `${fixed(l.p50, 3)} / ${fixed(l.p99, 3)}`;
  };
  const latencyRows = latency.map((s) => {
    const cClient = comparisonOf(s, "C client");
    const missing = cClient?.missing === undefined ? undefined : noteMark(`C client: ${cClient.missing}`);
    return [
      `${s.title} (n=${s.count.toLocaleString("en-US")})`,
      percentiles(s, "raw"),
      percentiles(s, "windshift"),
      percentiles(s, "windshift+sdk"),
      missing ?? percentiles(s, "C client"),
      missing ?? fixed(cClient?.windshiftLatencyRatio?.p50, 2),
      missing ?? fixed(cClient?.windshiftLatencyRatio?.p99, 2),
    ];
  });
  const c = report.meta.ceilings;
  const batch = (c?.pullBatch ?? Number.NaN).toLocaleString("en-US");
  const out: string[] = [""];
  if (throughput.length > 0) {
    out.push(
      "The ceilings: windshift (no SDK) against the most nats.js allows for the same work and against the C client, in the",
      "same rounds (they take their turn after windshift+sdk), medians of msgs/s; windshift ÷ ceiling, windshift ÷ C:",
      "median over median (the lowest and highest per-round ratio):",
      table(
        [
          "scenario",
          "raw nats.js",
          "windshift",
          "nats.js ceiling",
          "C client",
          "windshift ÷ ceiling (rounds)",
          "windshift ÷ C (rounds)",
        ],
        rows,
        new Set([1, 2, 3, 4, 5, 6]),
      ),
    );
  }
  if (latency.length > 0) {
    out.push(
      "Latency against the C client: publish call → handler, p50 / p99 in ms over all rounds' events, the C client taking",
      "its turn after windshift+sdk in the same rounds; windshift ÷ C: windshift's (no SDK) percentile over the C client's.",
      "Lower is better here, unlike msgs/s: 1.00 is as fast as the C client, 2.00 twice its latency.",
      table(
        ["scenario", "raw nats.js", "windshift", "windshift+sdk", "C client", "windshift ÷ C p50", "windshift ÷ C p99"],
        latencyRows,
        new Set([1, 2, 3, 4, 5, 6]),
      ),
    );
  }
  out.push(...[...notes].map(([note, n]) => `(${n}) ${note}`));
  if (throughput.length > 0) {
    out.push(
      "nats.js ceiling: nats.js's core API alone, no headers. Publish: a core publish with a reply subject on one wildcard",
      "inbox subscription, acks counted, not parsed, the window refilled as they arrive. Consume: MSG.NEXT pull requests of",
      `${batch} on one inbox, another at half a batch still to come, protobuf-es decode, +ACK published to each reply subject.`,
    );
  }
  out.push(
    `C client${c?.cClient === undefined ? "" : ` (${c.cClient})`}: bench/native/jsbench.c, one process per round, timed inside it.`,
  );
  if (throughput.length > 0) {
    out.push(
      "Publish: js_PublishAsync (no headers, MaxPending = the window), then js_PublishAsyncComplete. Consume:",
      `js_PullSubscribe bound to the consumer, natsSubscription_Fetch of ${batch}, a hand-written protobuf decode, natsMsg_Ack.`,
      `Both ceilings encode every event as the other variants do, and pull ${batch} at a time whatever the pull batch (raw`,
      "max_messages, windshift prefetch) says.",
    );
  }
  if (latency.length > 0) {
    out.push(
      "Latency: the same round as the others (stream purged, fresh consumer, every event acked checked): it pulls, then",
      "publishes with js_PublishAsync on the same schedule (clock_nanosleep to each due time), each event carrying the",
      "monotonic time of its publish call, no headers; a hand-written pull as nats.js consume() does it (MSG.NEXT of the",
      "pull batch on one inbox, more at 75 % of it still to come: libnats 3.4's natsSubscription_Fetch would hold events",
      "until a whole batch came), a hand-written decode, then the latency taken and +ACK sent as a request, awaited",
      "(confirmed acks, as ackAck()); seconds and latencies measured inside the process.",
    );
  }
  out.push(
    `No heap figures for the C client (another process); without gcc or libnats it is left out (${NATIVE_INSTALL_HINT}).`,
  );
  return out;
}

function formatMemory(memory: MemoryReport): string[] {
  const bytes = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-");
  return [
    `The in-memory engine (createMemoryEvents, real clock), in-process, ${memory.payloadBytes} B events, ` +
      `${memory.rounds} alternating rounds, a producer keeping 256 publishes in flight:`,
    table(
      ["loop", "events/s", "rounds min–max", "µs/event", "heap peak Δ B/event", "retained B/event"],
      memory.loops.map((l) => [
        `${l.title} (n=${l.count.toLocaleString("en-US")})`,
        int(l.eventsPerSec),
        `${int(Math.min(...l.roundsEventsPerSec))}–${int(Math.max(...l.roundsEventsPerSec))}`,
        fixed(1e6 / l.eventsPerSec, 2),
        bytes(l.heapPeakBytesPerEvent),
        bytes(l.retainedBytesPerEvent),
      ]),
      new Set([1, 2, 3, 4, 5]),
    ),
  ];
}

function formatPostgres(pgr: PostgresReport): string[] {
  if (pgr.skipped !== undefined) return [`PostgreSQL engine against pg-boss: skipped, ${pgr.skipped}.`];
  const rows: string[][] = [];
  for (const s of pgr.scenarios) {
    s.variants.forEach((v, i) => {
      rows.push([
        i === 0 ? `${s.title} (n=${s.count.toLocaleString("en-US")})` : "",
        v.variant,
        int(v.eventsPerSec),
        `${int(Math.min(...v.roundsEventsPerSec))}–${int(Math.max(...v.roundsEventsPerSec))}`,
        fixed(1e6 / v.eventsPerSec, 1),
        i === 0 ? fixed(s.ratio, 2) : "",
        i === 0 ? `${fixed(Math.min(...s.roundRatios), 2)}–${fixed(Math.max(...s.roundRatios), 2)}` : "",
      ]);
    });
  }
  return [
    `The PostgreSQL engine against pg-boss ${pgr.pgBoss ?? "?"}, PostgreSQL ${pgr.server ?? "?"} at ${pgr.url}, ` +
      `${pgr.payloadBytes} B events, ${pgr.rounds} alternating rounds, medians shown:`,
    table(
      ["scenario", "variant", "events/s", "rounds min–max", "µs/event", "windshift ÷ pg-boss", "÷ rounds"],
      rows,
      new Set([2, 3, 4, 5, 6]),
    ),
    "Each round in a fresh schema, dropped after it. windshift: createPostgresEvents (default pool of 10), events.publish",
    `of a TestEvent, ${pgr.inFlight} in flight; events.process with a typed handler, concurrency ${pgr.concurrency},`,
    "while the same producer publishes. pg-boss: send() of the same encoded event as base64 in its JSON data, the same",
    "window, and work() while the same producer sends. Process: first publish to last event handled, every event",
    "handled exactly once (checked) or the round fails; pg-boss completes a batch after its handler returns, windshift",
    "acks each event (batched into one statement per turn).",
    `pg-boss settings: ${pgr.pgBossSettings ?? "?"}.`,
  ];
}

function formatWorkflow(workflow: WorkflowReport): string[] {
  const rows = workflow.loops.map((l) => [
    `${l.title} (n=${l.count.toLocaleString("en-US")})`,
    int(l.runsPerSec),
    `${int(Math.min(...l.roundsRunsPerSec))}–${int(Math.max(...l.roundsRunsPerSec))}`,
    int(l.tasksPerSec),
    fixed(l.perTaskUs, 1),
    fixed(l.startUs, 1),
    fixed(l.ratioToProcess, 2),
    l.roundRatiosToProcess === undefined
      ? ""
      : `${fixed(Math.min(...l.roundRatiosToProcess), 2)}–${fixed(Math.max(...l.roundRatiosToProcess), 2)}`,
  ]);
  const single = workflow.loops.find((l) => l.id === "single-task");
  const processed = workflow.loops.find((l) => l.id === "process");
  const cost =
    single === undefined || processed === undefined
      ? []
      : [
          `A task costs ${fixed(single.perTaskUs / processed.perTaskUs, 1)}× an event through events.process ` +
            `(1-task run ${fixed(single.perTaskUs, 1)} µs/task ÷ ${fixed(processed.perTaskUs, 1)} µs/event).`,
        ];
  return [
    `Workflows on JetStream (events.runWorkflow, concurrency ${workflow.concurrency}), ${workflow.payloadBytes} B ` +
      `events for the 1-task runs and process, ${workflow.rounds} alternating rounds, medians shown:`,
    table(
      ["loop", "runs/s", "rounds min–max", "tasks/s", "µs/task", "start µs/run", "÷ process", "÷ process rounds"],
      rows,
      new Set([1, 2, 3, 4, 5, 6, 7]),
    ),
    "n: runs per round (events, for events.process); every loop handles the same number of tasks. The runs are started",
    "(the events published), 64 in flight, before the worker (the processor) starts; runs/s and tasks/s count from its",
    "start until every run completed (every event handled) and it closed. start µs/run: that start, timed on its own",
    "(startWorkflow per run; a publish per event for events.process), not in runs/s. No raw nats.js workflow: ÷ process is",
    "tasks/s over events.process's events/s (medians; rounds: the lowest and highest per-round ratio).",
    ...cost,
  ];
}
