/**
 * The ratios of one run as an SVG bar chart, for the README: hand-written SVG
 * 1.1, no scripts, no external fonts, a solid light background (it also reads
 * on GitHub's dark theme).
 *
 * One group of horizontal bars per JetStream scenario: windshift (no SDK) over
 * each other client that ran in it (raw nats.js, and where they ran the nats.js
 * ceiling and the C client), a thin line over each bar for the lowest and
 * highest per-round ratio. The latency scenario plots the other client's p50 over
 * windshift's, so that right of 1.0× means windshift did better there too. Under
 * its own heading, the PostgreSQL engine over pg-boss. The in-memory engine has
 * nothing to compare with: it is a note at the bottom, not bars.
 *
 * @module
 */

import type { ReportFigures, ScenarioFigures, VariantFigures } from "./summary.js";

/** One bar: a ratio, or why there is none. */
interface Bar {
  readonly against: string;
  readonly value?: number;
  readonly low?: number;
  readonly high?: number;
  readonly note?: string;
}

interface Group {
  readonly label: string;
  readonly bars: readonly Bar[];
}

interface Section {
  readonly heading: string;
  readonly groups: readonly Group[];
  /** Said instead of the bars (a skipped engine). */
  readonly note?: string;
}

const WIDTH = 800;
const MARGIN = 20;
const LABEL_WIDTH = 245;
const PLOT_LEFT = MARGIN + LABEL_WIDTH + 15;
const PLOT_RIGHT = WIDTH - MARGIN - 58;
const BAR_HEIGHT = 15;
const BAR_GAP = 4;
const GROUP_GAP = 14;
const LINE_HEIGHT = 15;
const FONT = "-apple-system, BlinkMacSystemFont, 'Segoe UI', 'Noto Sans', Helvetica, Arial, sans-serif";
const TEXT = "#1f2328";
const MUTED = "#59636e";
const GRID = "#d1d9e0";

/** The comparisons in legend order, with their colours; a variant not listed here gets one of {@link SPARE}. */
const COLOURS: Readonly<Record<string, string>> = {
  raw: "#4e79a7",
  "nats.js ceiling": "#f28e2b",
  "C client": "#59a14f",
  "pg-boss": "#b07aa1",
};
const SPARE = ["#e15759", "#76b7b2", "#9c755f", "#edc948"];

const LEGEND: Readonly<Record<string, string>> = {
  raw: "÷ raw nats.js",
  "nats.js ceiling": "÷ nats.js ceiling",
  "C client": "÷ C client",
  "pg-boss": "÷ pg-boss",
};

/** The variants that are windshift itself, never a comparison. */
const WINDSHIFT = new Set(["windshift", "windshift+sdk"]);

const xml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const num = (n: number): string => (Math.round(n * 10) / 10).toString();

/** A rough width of `text` in px at `size` (the chart cannot measure: it is a string). */
const textWidth = (text: string, size: number): number => text.length * size * 0.56;

/** Splits `text` into lines of at most `width` px at `size`, at spaces. */
function wrap(text: string, width: number, size: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    const next = line === "" ? word : `${line} ${word}`;
    if (line !== "" && textWidth(next, size) > width) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line !== "") lines.push(line);
  return lines;
}

const truncate = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

const ratioText = (n: number): string => `${n >= 10 ? n.toFixed(1) : n.toFixed(2)}×`;

function finiteRange(values: readonly number[]): { low?: number; high?: number } {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  return finite.length < 2 ? {} : { low: Math.min(...finite), high: Math.max(...finite) };
}

/** Whether a scenario measures latency (lower is better) rather than throughput. */
const isLatencyScenario = (s: ScenarioFigures): boolean => s.id.startsWith("latency");

/** The variants windshift is compared with in a scenario: every one but windshift's own, in legend order. */
function others(s: ScenarioFigures): VariantFigures[] {
  const order = Object.keys(COLOURS);
  const rank = (v: VariantFigures) => {
    const i = order.indexOf(v.variant);
    return i === -1 ? order.length : i;
  };
  return s.variants.filter((v) => !WINDSHIFT.has(v.variant)).sort((a, b) => rank(a) - rank(b));
}

function jetStreamGroup(s: ScenarioFigures): Group | undefined {
  const ws = s.variants.find((v) => v.variant === "windshift");
  if (ws === undefined) return undefined;
  const bars: Bar[] = [];
  if (isLatencyScenario(s)) {
    const p50 = ws.latencyMs?.p50;
    for (const o of others(s)) {
      const theirs = o.latencyMs?.p50;
      if (p50 === undefined || theirs === undefined || !(p50 > 0)) continue;
      bars.push({ against: o.variant, value: theirs / p50 });
    }
    if (bars.length === 0) return undefined;
    return { label: `${s.title}: p50, the other's ÷ windshift's`, bars };
  }
  for (const o of others(s)) {
    bars.push({
      against: o.variant,
      value: ws.msgsPerSec / o.msgsPerSec,
      ...finiteRange(ws.roundsMsgsPerSec.map((rate, i) => rate / (o.roundsMsgsPerSec[i] ?? Number.NaN))),
    });
  }
  // A ceiling that could not run here: say why where its bar would be.
  for (const c of s.ceilings ?? []) {
    if (c.missing !== undefined && !bars.some((b) => b.against === c.variant)) {
      bars.push({ against: c.variant, note: `${c.variant} not run: ${c.missing}` });
    }
  }
  return bars.length === 0 ? undefined : { label: s.title, bars };
}

function sections(report: ReportFigures): Section[] {
  const out: Section[] = [];
  const groups = report.scenarios.map(jetStreamGroup).filter((g): g is Group => g !== undefined);
  if (groups.length > 0) {
    out.push({ heading: "NATS JetStream: windshift ÷ raw nats.js, ÷ the nats.js ceiling, ÷ the C client", groups });
  }
  const pg = report.postgres;
  if (pg !== undefined) {
    const heading = `PostgreSQL engine: windshift ÷ pg-boss${pg.pgBoss === undefined ? "" : ` ${pg.pgBoss}`}, events/s on the same database`;
    if (pg.skipped !== undefined) out.push({ heading, groups: [], note: `skipped: ${pg.skipped}` });
    else {
      out.push({
        heading,
        groups: pg.scenarios.map((s) => ({
          label: s.title,
          bars: [{ against: "pg-boss", value: s.ratio, ...finiteRange(s.roundRatios) }],
        })),
      });
    }
  }
  return out;
}

/** Tick spacing for a 0..max axis: about five ticks. */
function tickStep(max: number): number {
  for (const step of [0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 500, 1000]) {
    if (max / step <= 6) return step;
  }
  return 10 ** Math.ceil(Math.log10(max / 5));
}

function text(x: number, y: number, content: string, attrs = ""): string {
  return `<text x="${num(x)}" y="${num(y)}"${attrs === "" ? "" : ` ${attrs}`}>${xml(content)}</text>`;
}

/** The chart, as the text of an SVG file. */
export function formatChart(report: ReportFigures): string {
  const m = report.meta;
  const body: string[] = [];
  let y = MARGIN + 16;
  body.push(text(MARGIN, y, "windshift against the other clients, one run", 'font-size="17" font-weight="bold"'));
  y += 8;
  const captions = [
    `commit ${m.commit} · ${m.date.slice(0, 10)} · ${m.mode} run, ${m.rounds} rounds per scenario (the variants alternate), ` +
      `${m.platform}, ${m.cpus} CPUs, node ${m.node}`,
    "Each bar: windshift's (no OpenTelemetry SDK) median events/s ÷ the other client's, same scenario and rounds; " +
      "right of the 1.0× line windshift was faster. The thin line on a bar: the lowest and highest per-round ratio.",
  ];
  if (report.scenarios.some(isLatencyScenario)) {
    captions.push(
      "Latency (lower is better): the other client's p50 publish→handler time ÷ windshift's, so right of 1.0× " +
        "windshift was quicker.",
    );
  }
  for (const caption of captions) {
    for (const line of wrap(caption, WIDTH - 2 * MARGIN, 12)) {
      y += LINE_HEIGHT;
      body.push(text(MARGIN, y, line, `font-size="12" fill="${MUTED}"`));
    }
  }

  const all = sections(report);
  const against = [...new Set(all.flatMap((s) => s.groups.flatMap((g) => g.bars.map((b) => b.against))))];
  const spare = [...SPARE];
  const colour = new Map(against.map((a) => [a, COLOURS[a] ?? spare.shift() ?? "#888888"]));
  // Legend, on one line (wrapped if it must).
  y += 22;
  let x = MARGIN;
  for (const a of against) {
    const label = LEGEND[a] ?? `÷ ${a}`;
    const w = 16 + textWidth(label, 12) + 18;
    if (x + w > WIDTH - MARGIN) {
      x = MARGIN;
      y += LINE_HEIGHT + 4;
    }
    body.push(`<rect x="${num(x)}" y="${num(y - 10)}" width="11" height="11" fill="${colour.get(a)}"/>`);
    body.push(text(x + 16, y, label, 'font-size="12"'));
    x += w;
  }

  if (all.length === 0) {
    y += 30;
    body.push(
      text(
        MARGIN,
        y,
        "Nothing to compare in this run (no JetStream scenario, no PostgreSQL engine).",
        'font-size="13"',
      ),
    );
  }
  for (const [index, section] of all.entries()) {
    y += index === 0 ? 18 : 26;
    if (index > 0) {
      body.push(
        `<line x1="${MARGIN}" y1="${num(y - 14)}" x2="${WIDTH - MARGIN}" y2="${num(y - 14)}" stroke="${GRID}"/>`,
      );
    }
    y += 14;
    body.push(text(MARGIN, y, section.heading, 'font-size="14" font-weight="bold"'));
    if (section.note !== undefined) {
      for (const line of wrap(section.note, WIDTH - 2 * MARGIN, 12)) {
        y += LINE_HEIGHT + 2;
        body.push(text(MARGIN, y, line, `font-size="12" fill="${MUTED}"`));
      }
      continue;
    }
    y = drawSection(body, section, y + 36, colour);
  }

  const memory = report.memory;
  if (memory !== undefined && memory.loops.length > 0) {
    y += 26;
    body.push(`<line x1="${MARGIN}" y1="${num(y - 14)}" x2="${WIDTH - MARGIN}" y2="${num(y - 14)}" stroke="${GRID}"/>`);
    const loops = memory.loops
      .map((l) => `${l.title}: ${Math.round(l.eventsPerSec).toLocaleString("en-US")}/s`)
      .join("; ");
    const note = `In-memory engine, not charted: no other client to compare with (median events/s, in-process): ${loops}.`;
    for (const line of wrap(note, WIDTH - 2 * MARGIN, 12)) {
      y += LINE_HEIGHT;
      body.push(text(MARGIN, y, line, `font-size="12" fill="${MUTED}"`));
    }
  }

  const height = Math.ceil(y + MARGIN);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ` +
      `font-family="${FONT}" fill="${TEXT}">`,
    "<title>windshift ÷ the other clients: ratios of one bench run</title>",
    `<rect x="0" y="0" width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}

/** Draws one section's groups from `top`, its axis under them; returns the y it ended at. */
function drawSection(body: string[], section: Section, top: number, colour: ReadonlyMap<string, string>): number {
  const values = section.groups.flatMap((g) => g.bars.flatMap((b) => [b.value ?? 0, b.high ?? 0]));
  const max = Math.max(1.1, ...values.filter(Number.isFinite)) * 1.05;
  const step = tickStep(max);
  const axisMax = Math.ceil(max / step) * step;
  const scale = (v: number) => PLOT_LEFT + (Math.min(v, axisMax) / axisMax) * (PLOT_RIGHT - PLOT_LEFT);

  const rows: string[] = [];
  let y = top;
  for (const group of section.groups) {
    const label = wrap(group.label, LABEL_WIDTH, 12).slice(0, 4);
    const barsHeight = group.bars.length * (BAR_HEIGHT + BAR_GAP) - BAR_GAP;
    const height = Math.max(barsHeight, label.length * LINE_HEIGHT);
    const labelTop = y + (height - label.length * LINE_HEIGHT) / 2;
    label.forEach((line, i) => {
      rows.push(text(MARGIN, labelTop + (i + 1) * LINE_HEIGHT - 4, line, 'font-size="12"'));
    });
    let barY = y + (height - barsHeight) / 2;
    for (const bar of group.bars) {
      const mid = barY + BAR_HEIGHT / 2;
      if (bar.value === undefined || !Number.isFinite(bar.value)) {
        const note = truncate(bar.note ?? `${bar.against}: no figure`, 75);
        rows.push(
          `<rect x="${PLOT_LEFT + 2}" y="${num(mid - 7)}" width="${num(textWidth(note, 11) + 5)}" height="14" fill="#ffffff"/>`,
          text(PLOT_LEFT + 4, mid + 4, note, `font-size="11" font-style="italic" fill="${MUTED}"`),
        );
      } else {
        const end = scale(bar.value);
        rows.push(
          `<rect x="${PLOT_LEFT}" y="${num(barY)}" width="${num(Math.max(end - PLOT_LEFT, 1))}" height="${BAR_HEIGHT}" fill="${colour.get(bar.against)}"/>`,
        );
        let labelX = end;
        if (bar.low !== undefined && bar.high !== undefined) {
          const [lo, hi] = [scale(bar.low), scale(bar.high)];
          rows.push(
            `<path d="M${num(lo)} ${num(mid)}H${num(hi)}M${num(lo)} ${num(mid - 4)}V${num(mid + 4)}M${num(hi)} ${num(mid - 4)}V${num(mid + 4)}" stroke="${TEXT}" stroke-width="1.2" fill="none"/>`,
          );
          labelX = Math.max(labelX, hi);
        }
        // A white backing, so that the 1.0× line or a grid line never runs through the figure.
        const figure = ratioText(bar.value);
        rows.push(
          `<rect x="${num(labelX + 3)}" y="${num(mid - 7)}" width="${num(textWidth(figure, 11) + 5)}" height="14" fill="#ffffff"/>`,
          text(labelX + 5, mid + 4, figure, 'font-size="11"'),
        );
      }
      barY += BAR_HEIGHT + BAR_GAP;
    }
    y += height + GROUP_GAP;
  }
  const bottom = y - GROUP_GAP + 6;

  // The grid and the 1.0× line go under the bars.
  const grid: string[] = [];
  for (let t = 0; t <= axisMax + 1e-9; t += step) {
    const gx = scale(t);
    grid.push(`<line x1="${num(gx)}" y1="${num(top - 6)}" x2="${num(gx)}" y2="${num(bottom)}" stroke="${GRID}"/>`);
    grid.push(text(gx, bottom + 14, `${Number(t.toFixed(2))}×`, `font-size="11" fill="${MUTED}" text-anchor="middle"`));
  }
  const one = scale(1);
  grid.push(
    `<line x1="${num(one)}" y1="${num(top - 12)}" x2="${num(one)}" y2="${num(bottom)}" stroke="${TEXT}" stroke-width="1.5" stroke-dasharray="5 3"/>`,
    text(one, top - 16, "1.0× = the other client", 'font-size="11" text-anchor="middle"'),
  );
  body.push(...grid, ...rows);
  return bottom + 16;
}
