/**
 * Text output: aligned tables, sizes, times, option values and rates.
 *
 * @module
 */

/** A table column: its heading, and whether its cells are right-aligned (numbers). */
export interface Column {
  readonly heading: string;
  readonly right?: boolean;
}

/** Lines of an aligned table, two spaces between columns; without headings when `columns` have none. */
export function table(columns: readonly Column[], rows: readonly (readonly string[])[]): string[] {
  const headed = columns.some((c) => c.heading !== "");
  const all = headed ? [columns.map((c) => c.heading), ...rows] : [...rows];
  const widths = columns.map((_, i) => Math.max(0, ...all.map((row) => [...(row[i] ?? "")].length)));
  return all.map((row) =>
    columns
      .map((c, i) => {
        const cell = row[i] ?? "";
        const pad = " ".repeat((widths[i] ?? 0) - [...cell].length);
        // The last left-aligned column is not padded: no trailing spaces.
        if (c.right === true) return pad + cell;
        return i === columns.length - 1 ? cell : cell + pad;
      })
      .join("  "),
  );
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** `1536` → `1.5 KiB`. */
export function bytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${UNITS[unit]}`;
}

/** A time in UTC to the second (`2025-05-01T10:11:12Z`), or `-`. */
export function time(date: Date | undefined): string {
  return date === undefined ? "-" : date.toISOString().replace(/\.\d+Z$/, "Z");
}

/** A number, or `-` for zero when zero means "none yet" (ids). */
export function id(n: number): string {
  return n === 0 ? "-" : String(n);
}

/** An option's value in a plan's diff: numbers as they are, `default` when not set, others as JSON. */
export function optionValue(value: unknown): string {
  if (value === undefined) return "default";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

/** A rate per second, or `-` when there is none yet. */
export function rate(perSecond: number | undefined): string {
  if (perSecond === undefined) return "-";
  return perSecond < 10 ? perSecond.toFixed(1) : String(Math.round(perSecond));
}

/** `value` made JSON-friendly: `undefined` fields become `null`, dates ISO strings, bigints strings. */
export function toJsonValue(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_key, v: unknown) => {
      if (v === undefined) return null;
      if (typeof v === "bigint") return v.toString();
      return v;
    }),
  );
}
