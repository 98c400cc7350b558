import { describe, expect, it } from "vitest";
import { formatChart } from "../../bench/chart.js";
import { formatSummary, type ReportFigures, type ScenarioFigures, type VariantFigures } from "../../bench/summary.js";

function variant(name: string, rounds: number[], latencyP50?: number): VariantFigures {
  const sorted = [...rounds].sort((a, b) => a - b);
  const msgsPerSec = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
  return {
    variant: name,
    msgsPerSec,
    roundsMsgsPerSec: rounds,
    ...(latencyP50 === undefined ? {} : { latencyMs: { p50: latencyP50, p99: latencyP50 * 4 } }),
  };
}

const publish: ScenarioFigures = {
  id: "publish-4096",
  title: "publish, 4,096 in flight, 128 B",
  variants: [
    variant("raw", [100_000, 90_000, 110_000]),
    variant("windshift", [80_000, 70_000, 90_000]),
    variant("windshift+sdk", [60_000, 50_000, 70_000]),
    variant("nats.js ceiling", [160_000, 140_000, 180_000]),
  ],
  ceilings: [{ variant: "nats.js ceiling" }, { variant: "C client", missing: "no libnats <here> & | there" }],
};

const latency: ScenarioFigures = {
  id: "latency",
  title: "latency publish→handler at 2,000/s, confirmed acks, 128 B",
  variants: [
    variant("raw", [2_000, 2_000, 2_000], 2),
    variant("windshift", [2_000, 2_000, 2_000], 1),
    variant("C client", [2_000, 2_000, 2_000], 0.5),
  ],
};

const report: ReportFigures = {
  meta: {
    date: "2026-12-01T12:00:00.000Z",
    node: "v22.0.0",
    platform: "linux-x64",
    cpus: 2,
    cpuModel: "Test CPU",
    natsServer: "2.11.0",
    commit: "abc1234",
    mode: "quick",
    rounds: 3,
  },
  scenarios: [publish, latency],
  memory: { loops: [{ title: "publish → events.process (1 handler) → ack", eventsPerSec: 123_456 }] },
  postgres: {
    pgBoss: "10.4.2",
    scenarios: [
      {
        title: "publish, 64 in flight",
        variants: [
          { variant: "windshift", eventsPerSec: 3_000 },
          { variant: "pg-boss", eventsPerSec: 1_000 },
        ],
        ratio: 3,
        roundRatios: [2.5, 3, 3.5],
      },
    ],
  },
};

describe("bench summary table", () => {
  const md = formatSummary(report);
  const lines = md.split("\n");

  it("starts with where and how the numbers were taken", () => {
    expect(lines[0]).toBe(
      "commit abc1234 · 2026-12-01 · quick run · 3 rounds, medians · linux-x64, 2 × Test CPU, node v22.0.0, nats-server 2.11.0",
    );
  });

  it("gives each client's events/s and windshift's ratios, a dash where a client did not run", () => {
    const row = lines.find((l) => l.startsWith("| publish, 4,096"));
    expect(row).toBe(
      "| publish, 4,096 in flight, 128 B | 100,000 | 80,000 | 160,000 | –<sup>1</sup> | 0.80× | 0.50× | – |",
    );
    // The reason the C client did not run is a footnote, pipes kept out of the table.
    expect(md).toContain("<sup>1</sup> C client: no libnats <here> & | there");
  });

  it("shows latency as p50 / p99 ms, with any variant that measured it", () => {
    const row = lines.find((l) => l.startsWith("| latency"));
    expect(row).toContain("| 2.00 / 8.00 | 1.00 / 4.00 | – | 0.50 / 2.00 | 0.50× | – | 2.00× |");
  });

  it("opens the in-memory and PostgreSQL engines with bold rows in the same table", () => {
    const table = lines.filter((l) => l.startsWith("|"));
    const memory = table.findIndex((l) => l.startsWith("| **in-memory engine**"));
    const pg = table.findIndex((l) => l.startsWith("| **PostgreSQL engine** against pg-boss 10.4.2 | **pg-boss** |"));
    expect(memory).toBeGreaterThan(2);
    expect(pg).toBeGreaterThan(memory);
    expect(table[memory + 1]).toBe("| publish → events.process (1 handler) → ack |  | 123,456 |  |  |  |  |  |");
    expect(table[pg + 1]).toBe("| publish, 64 in flight | 1,000 | 3,000 |  |  | 3.00× |  |  |");
    // Every row has the header's 8 cells.
    for (const l of table) expect(l.replace(/\\\|/g, "").split("|").length).toBe(10);
  });

  it("leaves out what did not run", () => {
    const only: ReportFigures = { meta: report.meta, scenarios: [publish] };
    const out = formatSummary(only);
    expect(out).not.toContain("in-memory");
    expect(out).not.toContain("PostgreSQL");
    expect(out).not.toContain("latency");
    const skipped = formatSummary({ ...only, postgres: { ...report.postgres!, skipped: "no answer", scenarios: [] } });
    expect(skipped).toContain("| skipped: no answer |");
  });
});

describe("bench chart", () => {
  const svg = formatChart(report);
  const bars = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="([\d.]+)" height="15" fill="(#[0-9a-f]{6})"\/>/g)];
  const labels = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);

  it("is one SVG 1.1 document on a solid background, with the run's commit, date and mode", () => {
    expect(
      svg.startsWith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="800"',
      ),
    ).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    expect(svg).toMatch(/<rect x="0" y="0" width="800" height="\d+" fill="#ffffff"\/>/);
    expect(labels.some((l) => l?.startsWith("commit abc1234 · 2026-12-01 · quick run"))).toBe(true);
    expect(svg).not.toMatch(/<script|@import|href=/);
  });

  it("draws a bar per comparison: throughput ratios, the latency p50 inverted, pg-boss in its own section", () => {
    // publish: ÷ raw 0.8, ÷ ceiling 0.5; latency: raw 2 ÷ 1, C 0.5 ÷ 1; postgres: 3.
    expect(labels).toEqual(expect.arrayContaining(["0.80×", "0.50×", "2.00×", "3.00×"]));
    expect(bars).toHaveLength(5);
    const colours = bars.map((b) => b[2]);
    expect(new Set(colours).size).toBe(4);
    expect(labels).toContain("1.0× = the other client");
    expect(labels.filter((l) => l === "1.0× = the other client")).toHaveLength(2);
    expect(labels.some((l) => l?.startsWith("PostgreSQL engine: windshift ÷ pg-boss"))).toBe(true);
    // The missing C client says why, escaped.
    expect(svg).toContain("C client not run: no libnats &lt;here&gt; &amp; | there");
  });

  it("keeps the in-memory engine to a note and handles a run with nothing to compare", () => {
    expect(svg).toContain("In-memory engine, not charted");
    const empty = formatChart({ meta: report.meta, scenarios: [] });
    expect(empty).toContain("Nothing to compare in this run");
    expect(empty).not.toContain("In-memory");
  });
});
