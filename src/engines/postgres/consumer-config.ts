/**
 * A consumer's configuration as the `consumers` row holds it: the engine's
 * `ConsumerConfig` as JSON in the `config` column (camelCase keys in a fixed
 * order, `null` for what is unset; the SQL reads `processingTimeoutMs`,
 * `maxDeliveryAttempts` and `maxUnsettledEvents` from it), and its filter
 * subjects compiled to one regular expression in the `filter` column, so
 * that claims select matching events in SQL.
 *
 * @module
 */

import { ErrorCode, WindshiftError } from "../../errors.js";
import type { ConsumerConfig } from "../engine.js";
import { positionFromJson, positionToJson } from "./stream-config.js";

/** `config` as JSON text, keys always in the same order. */
export function consumerConfigToJson(config: ConsumerConfig): string {
  return JSON.stringify({
    name: config.name ?? null,
    subjects: config.subjects,
    from: positionToJson(config.from),
    processingTimeoutMs: config.processingTimeoutMs,
    maxDeliveryAttempts: config.maxDeliveryAttempts ?? null,
    inactiveThresholdMs: config.inactiveThresholdMs ?? null,
    maxUnsettledEvents: config.maxUnsettledEvents,
  });
}

/** The frozen `ConsumerConfig` of a `consumers.config` value (as `pg` parses JSONB). */
export function consumerConfigFromJson(json: unknown): ConsumerConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw unreadable(json);
  const o = json as Record<string, unknown>;
  const subjects = o.subjects;
  if (!Array.isArray(subjects) || !subjects.every((s) => typeof s === "string")) throw unreadable(json);
  if (o.name !== null && typeof o.name !== "string") throw unreadable(json);
  return Object.freeze({
    name: o.name ?? undefined,
    subjects: Object.freeze([...subjects]),
    from: positionFromJson(o.from),
    processingTimeoutMs: number(o.processingTimeoutMs, json),
    maxDeliveryAttempts: optionalNumber(o.maxDeliveryAttempts, json),
    inactiveThresholdMs: optionalNumber(o.inactiveThresholdMs, json),
    maxUnsettledEvents: number(o.maxUnsettledEvents, json),
  });
}

/**
 * The filter subjects as one anchored PostgreSQL regular expression (`~`),
 * `null` for none (every subject): in a pattern, a `*` token matches one
 * token and a last `>` token one or more; every other character is literal.
 */
export function filterRegex(subjects: readonly string[]): string | null {
  if (subjects.length === 0) return null;
  const one = subjects.map((subject) =>
    subject
      .split(".")
      .map((token) => (token === "*" ? "[^.]+" : token === ">" ? ".+" : token.replace(/[\\^$.|?*+()[\]{}]/g, "\\$&")))
      .join("\\."),
  );
  return `^(?:${one.join("|")})$`;
}

function number(value: unknown, json: unknown): number {
  if (typeof value !== "number") throw unreadable(json);
  return value;
}

function optionalNumber(value: unknown, json: unknown): number | undefined {
  return value === null || value === undefined ? undefined : number(value, json);
}

function unreadable(json: unknown): WindshiftError {
  return new WindshiftError(
    ErrorCode.Server,
    `a consumer's configuration in PostgreSQL is not one windshift wrote: ${JSON.stringify(json)}; was the consumers table edited by hand?`,
  );
}
