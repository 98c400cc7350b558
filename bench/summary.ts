/**
 * The summary table of one run, as GitHub markdown for the README: a line
 * saying where and how the numbers were taken, then one table with the
 * JetStream scenarios (events/s of each client, windshift's ratios), a bold row
 * opening the in-memory engine's loops (nothing to compare with) and one
 * opening the PostgreSQL engine against pg-boss.
 *
 * @module
 */

/**
 * The parts of a `BenchReport` (report.ts) that the summary and the chart read. Declared here, not imported:
 * report.ts's imports reach the built package (`windshift`, in dist/), which the unit test's type-check (the root
 * tsconfig, run before any build) cannot see. main.ts hands both functions the BenchReport itself, so
 * `tsc -p bench` fails as soon as these drift from it.
 */
export interface ReportFigures {
  readonly meta: {
    readonly date: string;
    readonly commit: string;
    readonly mode: string;
    readonly rounds: number;
    readonly platform: string;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly node: string;
    readonly natsServer: string;
  };
  readonly scenarios: readonly ScenarioFigures[];
  readonly memory?: { readonly loops: readonly { readonly title: string; readonly eventsPerSec: number }[] };
  readonly postgres?: {
    readonly skipped?: string;
    readonly pgBoss?: string;
    readonly scenarios: readonly {
      readonly title: string;
      readonly variants: readonly { readonly variant: string; readonly eventsPerSec: number }[];
      /** windshift ÷ pg-boss, medians, and in each round. */
      readonly ratio: number;
      readonly roundRatios: readonly number[];
    }[];
  };
}

/** A JetStream scenario's figures (a `ScenarioResult`, scenarios.ts). */
export interface ScenarioFigures {
  readonly id: string;
  readonly title: string;
  readonly variants: readonly VariantFigures[];
  /** The ceilings it ran with, and why one did not run. */
  readonly ceilings?: readonly { readonly variant: string; readonly missing?: string }[];
}

/** One variant's figures in a scenario (a `VariantResult`, scenarios.ts). */
export interface VariantFigures {
  readonly variant: string;
  readonly msgsPerSec: number;
  readonly roundsMsgsPerSec: readonly number[];
  readonly latencyMs?: { readonly p50: number; readonly p99: number };
}

/** The clients with a column, and the ratio columns (windshift ÷ each). */
const COMPARED = ["raw", "nats.js ceiling", "C client"] as const;

const NONE = "–";

const int = (n: number | undefined): string =>
  n === undefined || !Number.isFinite(n) ? NONE : Math.round(n).toLocaleString("en-US");
const ms = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const ratio = (n: number | undefined): string =>
  n === undefined || !Number.isFinite(n) ? NONE : `${n >= 10 ? n.toFixed(1) : n.toFixed(2)}×`;
const cell = (s: string): string => s.replace(/\|/g, "\\|");
const row = (cells: readonly string[]): string => `| ${cells.map(cell).join(" | ")} |`;

const isLatency = (s: ScenarioFigures): boolean => s.id.startsWith("latency");

/** The summary, as the text of a markdown file. */
export function formatSummary(report: ReportFigures): string {
  const m = report.meta;
  const notes: string[] = [];
  const note = (text: string): string => {
    if (!notes.includes(text)) notes.push(text);
    return `<sup>${notes.indexOf(text) + 1}</sup>`;
  };
  const rows: string[] = [];
  for (const s of report.scenarios) {
    const variant = (name: string) => s.variants.find((v) => v.variant === name);
    const ws = variant("windshift");
    const missing = (name: string) => s.ceilings?.find((c) => c.variant === name)?.missing;
    if (isLatency(s)) {
      const latency = (v: VariantFigures | undefined) =>
        v?.latencyMs === undefined ? NONE : `${ms(v.latencyMs.p50)} / ${ms(v.latencyMs.p99)}`;
      const p50Ratio = (name: string) => {
        const theirs = variant(name)?.latencyMs?.p50;
        const ours = ws?.latencyMs?.p50;
        return theirs === undefined || ours === undefined ? undefined : ours / theirs;
      };
      const mark = note(
        "latency: p50 / p99 in ms from publish call to handler; the ratios there are windshift's p50 ÷ the other's, " +
          "lower is better (the chart plots the inverse)",
      );
      rows.push(
        row([
          `${s.title}, p50 / p99 ms${mark}`,
          latency(variant("raw")),
          latency(ws),
          latency(variant("nats.js ceiling")),
          latency(variant("C client")),
          ...COMPARED.map((c) => ratio(p50Ratio(c))),
        ]),
      );
      continue;
    }
    const rate = (name: string) => {
      const why = missing(name);
      return why === undefined ? int(variant(name)?.msgsPerSec) : `${NONE}${note(`${name}: ${why}`)}`;
    };
    const over = (name: string) => {
      const theirs = variant(name)?.msgsPerSec;
      return ws === undefined || theirs === undefined ? undefined : ws.msgsPerSec / theirs;
    };
    rows.push(
      row([
        s.title,
        rate("raw"),
        int(ws?.msgsPerSec),
        rate("nats.js ceiling"),
        rate("C client"),
        ...COMPARED.map((c) => ratio(over(c))),
      ]),
    );
  }

  const memory = report.memory;
  if (memory !== undefined && memory.loops.length > 0) {
    rows.push(
      row([
        "**in-memory engine** (in-process, no server; nothing to compare with)",
        "",
        "**windshift**",
        "",
        "",
        "",
        "",
        "",
      ]),
    );
    for (const l of memory.loops) rows.push(row([l.title, "", int(l.eventsPerSec), "", "", "", "", ""]));
  }

  const pg = report.postgres;
  if (pg !== undefined) {
    rows.push(
      row([
        `**PostgreSQL engine** against pg-boss${pg.pgBoss === undefined ? "" : ` ${pg.pgBoss}`}`,
        "**pg-boss**",
        "**windshift**",
        "",
        "",
        "**÷ pg-boss**",
        "",
        "",
      ]),
    );
    if (pg.skipped !== undefined) rows.push(row([`skipped: ${pg.skipped}`, "", "", "", "", "", "", ""]));
    for (const s of pg.scenarios) {
      const rate = (name: string) => int(s.variants.find((v) => v.variant === name)?.eventsPerSec);
      rows.push(row([s.title, rate("pg-boss"), rate("windshift"), "", "", ratio(s.ratio), "", ""]));
    }
  }

  const machine = `${m.platform}, ${m.cpus} × ${m.cpuModel}, node ${m.node}, nats-server ${m.natsServer}`;
  const out = [
    `commit ${m.commit} · ${m.date.slice(0, 10)} · ${m.mode} run · ${m.rounds} rounds, medians · ${machine}`,
    "",
  ];
  if (rows.length === 0) out.push("No scenario ran.");
  else {
    out.push(
      row(["events/s", "raw nats.js", "windshift", "nats.js ceiling", "C client", "÷ raw", "÷ ceiling", "÷ C"]),
      "| :-- | --: | --: | --: | --: | --: | --: | --: |",
      ...rows,
    );
  }
  if (notes.length > 0) out.push("", notes.map((n, i) => `<sup>${i + 1}</sup> ${n}`).join("<br>"));
  return `${out.join("\n")}\n`;
}
