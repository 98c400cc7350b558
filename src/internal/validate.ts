import { validationError, type WindshiftError } from "../errors.js";
import { assertSubject, describe } from "./names.js";

/**
 * The longest duration accepted anywhere, in milliseconds: JetStream stores
 * durations as int64 nanoseconds, so about 292 years is the hard ceiling.
 */
export const MAX_DURATION_MS = 9_000_000_000_000;

/** Validates an optional whole number of milliseconds within `[min, MAX_DURATION_MS]`. */
export function durationMs(field: string, value: unknown, min = 0): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > MAX_DURATION_MS) {
    throw validationError(
      field,
      `${describe(value)} is not a whole number of milliseconds between ${min} and ${MAX_DURATION_MS}`,
    );
  }
  return value;
}

/** Validates an optional safe integer within `[min, max]`. */
export function integer(field: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw validationError(field, `${describe(value)} is not a whole number between ${min} and ${max}`);
  }
  return value;
}

/** Validates an optional boolean. */
export function boolean(field: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") throw validationError(field, `${describe(value)} is not a boolean`);
  return value;
}

/** Validates an optional value that must be one of `choices`. */
export function oneOf<const T extends string>(field: string, value: unknown, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !(choices as readonly string[]).includes(value)) {
    const close = typeof value === "string" ? closestName(value, choices) : undefined;
    const hint = close === undefined ? "" : `; did you mean "${close}"?`;
    throw validationError(field, `${describe(value)} is not one of ${choices.map((c) => `"${c}"`).join(", ")}${hint}`);
  }
  return value as T;
}

/** Validates an optional `Date` that holds a real time. */
export function date(field: string, value: unknown): Date | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw validationError(field, `${describe(value)} is not a valid Date`);
  }
  return value;
}

/** Validates that `value` is a plain options object (or undefined). */
export function optionsObject(field: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw validationError(field, `${describe(value)} is not an options object`);
  }
  return value as Record<string, unknown>;
}

/** Validates an optional `AbortSignal`. */
export function signal(field: string, value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw validationError(field, `${describe(value)} is not an AbortSignal`);
  return value;
}

/** Validates an optional list of subjects that may hold wildcards. */
export function subjectList(field: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    const fix = typeof value === "string" ? `; write [${describe(value)}]` : "";
    throw validationError(field, `${describe(value)} is not an array of subjects${fix}`);
  }
  value.forEach((s: unknown, i) => {
    assertSubject(`${field}[${i}]`, s, { wildcards: true });
  });
  const twice = value.find((s, i) => value.indexOf(s) !== i);
  if (twice !== undefined) throw validationError(field, `lists ${describe(twice)} twice`);
  return [...(value as string[])];
}

/**
 * Throws a validation error for an option this API does not know (a typo,
 * usually), suggesting the closest known one (see {@link unknownOption}).
 */
export function rejectUnknown(o: Record<string, unknown>, known: ReadonlySet<string>, prefix = "options"): void {
  for (const key of Object.keys(o)) {
    if (!known.has(key)) throw unknownOption(prefix, key, known);
  }
}

/**
 * Options renamed since they were first released: the old name, and the new
 * names it may have become (which one depends on the call: the one the call
 * knows is suggested).
 */
const RENAMED: Readonly<Record<string, readonly string[]>> = Object.freeze({
  maxPendingEvents: ["maxUnsettledEvents", "prefetch", "maxWaitingEvents"],
  minTimeout: ["initialDelayMs"],
  maxTimeout: ["maxDelayMs"],
  factor: ["multiplier"],
  randomize: ["jitter"],
  retries: ["maxAttempts"],
  maxRetryTime: ["maxElapsedMs"],
});

/**
 * The validation error for option `key` that `field`'s options do not have:
 * `options.maxAgeMS: is not a known option; did you mean maxAgeMs?`. An old
 * name says what it was renamed to; a near miss (see {@link closestName})
 * names the option meant.
 */
export function unknownOption(field: string, key: string, known: Iterable<string>): WindshiftError {
  const names = [...known];
  const renamed = Object.hasOwn(RENAMED, key) ? RENAMED[key]?.find((name) => names.includes(name)) : undefined;
  const close = renamed === undefined ? closestName(key, names) : undefined;
  const hint =
    renamed !== undefined ? `; it was renamed to ${renamed}` : close !== undefined ? `; did you mean ${close}?` : "";
  return validationError(`${field}.${key}`, `is not a known option${hint}`);
}

/**
 * The name in `candidates` that `name` most likely misspells, if any is close
 * enough: compared without case, within an edit distance of about a third of
 * the name's length (a swap of two neighbours counts as one edit), or the
 * name with a unit left out (`maxAge` for `maxAgeMs`). Ties go to the first.
 */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  const wanted = name.toLowerCase();
  const limit = Math.max(1, Math.floor(wanted.length / 3));
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const lower = candidate.toLowerCase();
    if (lower === wanted) return candidate;
    if (lower === `${wanted}ms`) return candidate;
    // Cheap bound first: the lengths alone differ by more than the limit.
    if (Math.abs(lower.length - wanted.length) > limit) continue;
    const distance = editDistance(wanted, lower, limit);
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * The optimal-string-alignment distance between `a` and `b` (insertions,
 * deletions, substitutions, and swaps of neighbours), or `limit + 1` once it
 * is certain to exceed `limit`.
 */
export function editDistance(a: string, b: string, limit = Number.POSITIVE_INFINITY): number {
  let before = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = new Array<number>(b.length + 1).fill(0);
    current[0] = i;
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, (before[j - 2] as number) + 1);
      current[j] = d;
      rowMin = Math.min(rowMin, d);
    }
    if (rowMin > limit) return limit + 1;
    before = previous;
    previous = current;
  }
  return previous[b.length] as number;
}
