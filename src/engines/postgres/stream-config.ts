/**
 * A stream's configuration as the `streams.config` column holds it: the
 * engine's `StreamConfig` as JSON, with camelCase keys in a fixed order,
 * `null` for what is unlimited, and times as ISO strings. The SQL reads
 * `subjects` and `deduplicationWindowMs` from it.
 *
 * @module
 */

import { ErrorCode, WindshiftError } from "../../errors.js";
import type { Position, SourceConfig, StreamConfig } from "../engine.js";

/** `config` as JSON text, keys always in the same order (so equal configs give equal text). */
export function configToJson(config: StreamConfig): string {
  return JSON.stringify({
    name: config.name,
    subjects: config.subjects,
    maxAgeMs: config.maxAgeMs ?? null,
    maxEvents: config.maxEvents ?? null,
    maxEventsPerSubject: config.maxEventsPerSubject ?? null,
    maxBytes: config.maxBytes ?? null,
    maxEventSize: config.maxEventSize ?? null,
    discardPolicy: config.discardPolicy,
    discardNewPerSubject: config.discardNewPerSubject,
    storage: config.storage,
    replicas: config.replicas,
    deduplicationWindowMs: config.deduplicationWindowMs,
    sources: config.sources.map((s) => ({ stream: s.stream, from: positionToJson(s.from), subjects: s.subjects })),
  });
}

/** The frozen `StreamConfig` of a `streams.config` value (as `pg` parses JSONB). */
export function configFromJson(json: unknown): StreamConfig {
  const o = record(json);
  return Object.freeze({
    name: text(o.name),
    subjects: Object.freeze(list(o.subjects).map(text)),
    maxAgeMs: optionalNumber(o.maxAgeMs),
    maxEvents: optionalNumber(o.maxEvents),
    maxEventsPerSubject: optionalNumber(o.maxEventsPerSubject),
    maxBytes: optionalNumber(o.maxBytes),
    maxEventSize: optionalNumber(o.maxEventSize),
    discardPolicy: o.discardPolicy === "new" ? "new" : "old",
    discardNewPerSubject: o.discardNewPerSubject === true,
    storage: o.storage === "memory" ? "memory" : "file",
    replicas: number(o.replicas),
    deduplicationWindowMs: number(o.deduplicationWindowMs),
    sources: Object.freeze(list(o.sources).map(sourceFromJson)),
  });
}

function sourceFromJson(json: unknown): SourceConfig {
  const o = record(json);
  return Object.freeze({
    stream: text(o.stream),
    from: positionFromJson(o.from),
    subjects: Object.freeze(list(o.subjects).map(text)),
  });
}

/** A position as JSON (a time as an ISO string). */
export function positionToJson(position: Position): unknown {
  return position.kind === "time" ? { kind: "time", time: position.time.toISOString() } : position;
}

/** The frozen `Position` of its JSON. */
export function positionFromJson(json: unknown): Position {
  const o = record(json);
  switch (o.kind) {
    case "start":
    case "end":
      return Object.freeze({ kind: o.kind });
    case "id":
      return Object.freeze({ kind: "id", id: number(o.id) });
    case "time":
      return Object.freeze({ kind: "time", time: new Date(text(o.time)) });
    default:
      throw unreadable(`position ${JSON.stringify(json)}`);
  }
}

function record(json: unknown): Record<string, unknown> {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw unreadable(JSON.stringify(json));
  return json as Record<string, unknown>;
}

function list(json: unknown): unknown[] {
  if (!Array.isArray(json)) throw unreadable(JSON.stringify(json));
  return json;
}

function text(json: unknown): string {
  if (typeof json !== "string") throw unreadable(JSON.stringify(json));
  return json;
}

function number(json: unknown): number {
  if (typeof json !== "number") throw unreadable(JSON.stringify(json));
  return json;
}

function optionalNumber(json: unknown): number | undefined {
  return json === null || json === undefined ? undefined : number(json);
}

function unreadable(what: string): WindshiftError {
  return new WindshiftError(
    ErrorCode.Server,
    `a stream's configuration in PostgreSQL is not one windshift wrote: ${what}; was the streams table edited by hand?`,
  );
}
