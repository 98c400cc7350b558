import { context } from "@opentelemetry/api";
import type { SourceConfig, StreamConfig } from "../engines/engine.js";
import { validationError } from "../errors.js";
import { throwIfAborted } from "../internal/abort.js";
import { assertName, describe } from "../internal/names.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import * as v from "../internal/validate.js";
import type { Runtime } from "../runtime.js";
import { Attr } from "../telemetry/attributes.js";
import { withManagementSpan } from "../telemetry/spans.js";
import { describePosition, parsePosition, type SourceStart } from "./position.js";

/** A stream this stream copies events from. */
export interface StreamSourceOptions {
  /** The name of the source stream. */
  readonly stream: string;
  /**
   * Where to start copying.
   * @default { start: true }
   */
  readonly from?: SourceStart;
  /**
   * Copy only events on these subjects (wildcards allowed). More than one
   * subject needs nats-server 2.10 on JetStream.
   * @default every subject
   */
  readonly subjects?: readonly string[];
}

/**
 * The declared configuration of a stream. `ensureStream` applies it as a
 * whole: an option left out falls back to its default, also on update.
 */
export interface StreamOptions {
  /** Subjects the stream captures (wildcards allowed). Required unless `sources` are given. */
  readonly subjects?: readonly string[];
  /**
   * Events older than this are removed.
   * @default unlimited
   */
  readonly maxAgeMs?: number;
  /**
   * At most this many events are kept.
   * @default unlimited
   */
  readonly maxEvents?: number;
  /**
   * At most this many events are kept per subject.
   * @default unlimited
   */
  readonly maxEventsPerSubject?: number;
  /**
   * At most this many bytes are kept.
   * @default unlimited
   */
  readonly maxBytes?: number;
  /**
   * What happens when a limit is reached: `"old"` removes the oldest events,
   * `"new"` refuses new ones.
   * @default "old"
   */
  readonly discardPolicy?: "old" | "new";
  /**
   * With `discardPolicy: "new"` and `maxEventsPerSubject`, refuse new events
   * per subject instead of per stream. Needs nats-server 2.9 on JetStream.
   * @default false
   */
  readonly discardNewPerSubject?: boolean;
  /**
   * Where events are kept.
   * @default "file"
   */
  readonly storage?: "file" | "memory";
  /**
   * How many servers hold a copy (1 to 5).
   * @default 1
   */
  readonly replicas?: number;
  /**
   * How long idempotency keys are remembered for deduplication. At most `maxAgeMs`.
   * @default 120_000 (2 minutes), or `maxAgeMs` when that is shorter
   */
  readonly deduplicationWindowMs?: number;
  /**
   * The largest event accepted, in bytes.
   * @default unlimited (the engine's max payload)
   */
  readonly maxEventSize?: number;
  /**
   * Streams to copy events from.
   * @default none
   */
  readonly sources?: readonly StreamSourceOptions[];
  /** Cancels the call. */
  readonly signal?: AbortSignal;
}

/** What `ensureStream` returns. */
export interface StreamDescription {
  /** The stream's name. */
  readonly name: string;
  /** The configuration as the engine reports it, in the same terms as {@link StreamOptions}. */
  readonly config: Omit<StreamOptions, "signal">;
  /** Whether the call created the stream (`false` when it existed). */
  readonly created: boolean;
}

/** The defaults of {@link StreamOptions}. */
export const streamDefaults: Defaults<StreamOptions> = Object.freeze({
  subjects: [],
  maxAgeMs: undefined,
  maxEvents: undefined,
  maxEventsPerSubject: undefined,
  maxBytes: undefined,
  discardPolicy: "old",
  discardNewPerSubject: false,
  storage: "file",
  replicas: 1,
  // Computed: 2 minutes, or maxAgeMs when that is shorter.
  deduplicationWindowMs: undefined,
  maxEventSize: undefined,
  sources: [],
  signal: undefined,
});

const DEFAULT_DEDUPLICATION_WINDOW_MS = 120_000;
/**
 * The shortest max age and deduplication window nats-server accepts ("max
 * age needs to be >= 100ms", "duplicates window needs to be >= 100ms",
 * measured on 2.9.10); the memory engine is held to the same.
 */
export const MIN_STREAM_DURATION_MS = 100;
const sourceDefaults: Defaults<StreamSourceOptions> = Object.freeze({
  stream: undefined,
  from: { start: true } as const,
  subjects: [],
});

/** Validates `options` into the whole configuration of stream `name`. */
export function resolveStreamConfig(name: string, options: unknown): StreamConfig {
  assertName("stream", name);
  const o = mergeOptions<StreamOptions>("options", options, streamDefaults);
  const subjects = v.subjectList("subjects", o.subjects);
  const sources = sourceList(o.sources);
  if (subjects.length === 0 && sources.length === 0) {
    throw validationError(
      "subjects",
      `stream ${describe(name)} needs at least one subject or source, e.g. subjects: [${describe(`${name}.>`)}]`,
    );
  }
  const maxAgeMs = v.durationMs("maxAgeMs", o.maxAgeMs);
  if (maxAgeMs !== undefined && maxAgeMs > 0 && maxAgeMs < MIN_STREAM_DURATION_MS) {
    throw validationError(
      "maxAgeMs",
      `${maxAgeMs} is below the shortest max age nats-server accepts (${MIN_STREAM_DURATION_MS} ms); use ${MIN_STREAM_DURATION_MS} or more, or leave it out for no limit`,
    );
  }
  const maxEventsPerSubject = v.integer("maxEventsPerSubject", o.maxEventsPerSubject, 1);
  const discardPolicy = v.oneOf("discardPolicy", o.discardPolicy, ["old", "new"] as const) as "old" | "new";
  const discardNewPerSubject = v.boolean("discardNewPerSubject", o.discardNewPerSubject) as boolean;
  const givenDedupe = v.durationMs("deduplicationWindowMs", o.deduplicationWindowMs, 1);
  if (givenDedupe !== undefined && givenDedupe < MIN_STREAM_DURATION_MS) {
    throw validationError(
      "deduplicationWindowMs",
      `${givenDedupe} is below the shortest window nats-server accepts (${MIN_STREAM_DURATION_MS} ms); use ${MIN_STREAM_DURATION_MS} or more`,
    );
  }
  if (givenDedupe !== undefined && maxAgeMs !== undefined && maxAgeMs > 0 && givenDedupe > maxAgeMs) {
    throw validationError(
      "deduplicationWindowMs",
      `${givenDedupe} is longer than maxAgeMs (${maxAgeMs}): keys would outlive their events; use at most ${maxAgeMs}, or leave it out (it defaults to the shorter of 2 minutes and maxAgeMs)`,
    );
  }
  if (discardNewPerSubject && (discardPolicy !== "new" || maxEventsPerSubject === undefined)) {
    const missing = [
      ...(discardPolicy === "new" ? [] : [`discardPolicy: "new" (it is "${discardPolicy}")`]),
      ...(maxEventsPerSubject === undefined ? ["maxEventsPerSubject"] : []),
    ];
    throw validationError("discardNewPerSubject", `needs ${missing.join(" and ")}; set them, or leave it out`);
  }
  return {
    name,
    subjects,
    maxAgeMs: maxAgeMs || undefined,
    maxEvents: v.integer("maxEvents", o.maxEvents, 1),
    maxEventsPerSubject,
    maxBytes: v.integer("maxBytes", o.maxBytes, 1),
    maxEventSize: v.integer("maxEventSize", o.maxEventSize, 1, 2 ** 31 - 1),
    discardPolicy,
    discardNewPerSubject,
    storage: v.oneOf("storage", o.storage, ["file", "memory"] as const) as "file" | "memory",
    replicas: v.integer("replicas", o.replicas, 1, 5) as number,
    // The server refuses a window longer than the max age, so the default shrinks to fit.
    deduplicationWindowMs:
      givenDedupe ?? Math.min(DEFAULT_DEDUPLICATION_WINDOW_MS, maxAgeMs || DEFAULT_DEDUPLICATION_WINDOW_MS),
    sources,
  };
}

function sourceList(value: unknown): SourceConfig[] {
  if (!Array.isArray(value)) {
    throw validationError("sources", `${describe(value)} is not an array of sources ([{ stream: "name" }, ...])`);
  }
  return value.map((item: unknown, i) => {
    const field = `sources[${i}]`;
    const o = mergeOptions<StreamSourceOptions>(field, item, sourceDefaults);
    assertName(`${field}.stream`, o.stream);
    return {
      stream: o.stream,
      from: parsePosition(`${field}.from`, o.from, { allowEnd: false }) ?? { kind: "start" },
      subjects: v.subjectList(`${field}.subjects`, o.subjects),
    };
  });
}

/** A stream's configuration in {@link StreamOptions} terms: limits that are unlimited are left out. */
export function describeStream(c: StreamConfig): Omit<StreamOptions, "signal"> {
  const out: { -readonly [K in keyof Omit<StreamOptions, "signal">]: StreamOptions[K] } = {
    subjects: [...c.subjects],
    discardPolicy: c.discardPolicy,
    discardNewPerSubject: c.discardNewPerSubject,
    storage: c.storage,
    replicas: c.replicas,
    deduplicationWindowMs: c.deduplicationWindowMs,
  };
  if (c.maxAgeMs !== undefined) out.maxAgeMs = c.maxAgeMs;
  if (c.maxEvents !== undefined) out.maxEvents = c.maxEvents;
  if (c.maxEventsPerSubject !== undefined) out.maxEventsPerSubject = c.maxEventsPerSubject;
  if (c.maxBytes !== undefined) out.maxBytes = c.maxBytes;
  if (c.maxEventSize !== undefined) out.maxEventSize = c.maxEventSize;
  if (c.sources.length > 0) {
    out.sources = c.sources.map((s) => {
      const from = describePosition(s.from) as SourceStart;
      return s.subjects.length > 0 ? { stream: s.stream, from, subjects: [...s.subjects] } : { stream: s.stream, from };
    });
  }
  return out;
}

/** Creates stream `name` or updates it to `options`; see `Events.ensureStream`. */
export async function ensureStream(rt: Runtime, name: string, options?: StreamOptions): Promise<StreamDescription> {
  const config = resolveStreamConfig(name, options);
  const signal = v.signal("signal", options?.signal);
  throwIfAborted(signal);
  return withManagementSpan(rt.telemetry, "ensureStream", context.active(), { [Attr.Stream]: name }, async () => {
    const ensured = await rt.engine.ensureStream(config, signal);
    return { name, config: describeStream(ensured.config), created: ensured.created };
  });
}
