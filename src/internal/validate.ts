import { validationError } from "../errors.js";
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
    throw validationError(field, `${describe(value)} is not one of ${choices.map((c) => `"${c}"`).join(", ")}`);
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
  if (!Array.isArray(value)) throw validationError(field, "must be an array of subjects");
  value.forEach((s: unknown, i) => {
    assertSubject(`${field}[${i}]`, s, { wildcards: true });
  });
  if (new Set(value).size !== value.length) throw validationError(field, "lists a subject twice");
  return [...(value as string[])];
}

/** Throws a validation error for an option this API does not know (a typo, usually). */
export function rejectUnknown(o: Record<string, unknown>, known: ReadonlySet<string>, prefix = "options"): void {
  for (const key of Object.keys(o)) {
    if (!known.has(key)) throw validationError(`${prefix}.${key}`, "is not a known option");
  }
}
