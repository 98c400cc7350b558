import { expect } from "vitest";
import type { ErrorCode } from "../../src/errors.js";

/** Matches a `VALIDATION` error about `field` (for `toThrow` / `rejects.toThrow`). */
export function validationAt(field: string): unknown {
  return expect.objectContaining({ name: "WindshiftError", code: "VALIDATION", details: { field } });
}

/** Matches a `WindshiftError` with `code` and, when given, these other properties. */
export function windshiftError(code: ErrorCode, rest: Record<string, unknown> = {}): unknown {
  return expect.objectContaining({ name: "WindshiftError", code, ...rest });
}
