import type { Position } from "../engines/engine.js";
import { validationError } from "../errors.js";
import { describe } from "../internal/names.js";
import { date, integer } from "../internal/validate.js";

/** Start at the first event still in the stream. */
export interface FromStart {
  /** Always `true`. */
  readonly start: true;
}
/** Start with events published after the consumer is created. */
export interface FromEnd {
  /** Always `true`. */
  readonly end: true;
}
/**
 * Start at the event with this id (stream sequence), inclusive. An id beyond
 * the stream's last one starts at the next event stored (JetStream's rule).
 */
export interface FromId {
  /** The event id to start at (from 1). */
  readonly id: number;
}
/** Start at the first event stored at or after this time. */
export interface FromTime {
  /** The time to start at. */
  readonly time: Date;
}

/** Where a consumer starts reading a stream. */
export type ConsumerStart = FromStart | FromEnd | FromId | FromTime;
/** Where a stream starts copying a source stream. */
export type SourceStart = FromStart | FromId | FromTime;

/** Validates a `from` option; `end` is allowed for consumers, not for stream sources. */
export function parsePosition(
  field: string,
  value: unknown,
  rules: { readonly allowEnd: boolean },
): Position | undefined {
  const { allowEnd } = rules;
  if (value === undefined) return undefined;
  const choices = allowEnd
    ? "{ start: true }, { end: true }, { id }, or { time }"
    : "{ start: true }, { id }, or { time }";
  if (typeof value !== "object" || value === null) {
    throw validationError(field, `${describe(value)} is not one of ${choices}`);
  }
  const keys = Object.keys(value);
  const v = value as Record<string, unknown>;
  if (keys.length === 1) {
    if (v.start === true) return { kind: "start" };
    if (allowEnd && v.end === true) return { kind: "end" };
    if ("id" in v) return { kind: "id", id: required(`${field}.id`, integer(`${field}.id`, v.id, 1)) };
    if ("time" in v) return { kind: "time", time: required(`${field}.time`, date(`${field}.time`, v.time)) };
  }
  const gave = keys.length === 0 ? "an empty object" : `{ ${keys.map((k) => `${k}: ${describe(v[k])}`).join(", ")} }`;
  throw validationError(field, `${gave} is not one of ${choices} (exactly one key)`);
}

function required<T>(field: string, value: T | undefined): T {
  if (value === undefined) throw validationError(field, "is required");
  return value;
}

/** A position in the public form of {@link ConsumerStart}. */
export function describePosition(position: Position): ConsumerStart {
  switch (position.kind) {
    case "start":
      return { start: true };
    case "end":
      return { end: true };
    case "id":
      return { id: position.id };
    case "time":
      return { time: position.time };
  }
}
