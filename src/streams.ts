import type { StreamConfig, StreamInfo, StreamSource } from "@nats-io/jetstream";
import { raceAbort, throwIfAborted } from "./abort.js";
import { ErrorCode, validationError, WindshiftError } from "./errors.js";
import { assertName } from "./names.js";
import { toWindshiftError } from "./nats-errors.js";
import { type Position, parsePosition, type SourceStart } from "./position.js";
import { type Runtime, toMs, toNanos } from "./runtime.js";
import { requireServer } from "./server-version.js";
import { Attr, withManagementSpan } from "./telemetry.js";
import * as v from "./validate.js";

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
   * subject needs nats-server 2.10.
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
   * per subject instead of per stream. Needs nats-server 2.9.
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
   * @default unlimited (the server's max payload)
   */
  readonly maxEventSize?: number;
  /** Streams to copy events from. */
  readonly sources?: readonly StreamSourceOptions[];
  /** Cancels the call. */
  readonly signal?: AbortSignal;
}

/** What `ensureStream` returns. */
export interface StreamDescription {
  /** The stream's name. */
  readonly name: string;
  /** The configuration as the server reports it, in the same terms as {@link StreamOptions}. */
  readonly config: Omit<StreamOptions, "signal">;
  /** Whether the call created the stream (`false` when it existed). */
  readonly created: boolean;
}

const DEFAULT_DEDUPLICATION_WINDOW_MS = 120_000;
const KNOWN = new Set([
  "subjects",
  "maxAgeMs",
  "maxEvents",
  "maxEventsPerSubject",
  "maxBytes",
  "discardPolicy",
  "discardNewPerSubject",
  "storage",
  "replicas",
  "deduplicationWindowMs",
  "maxEventSize",
  "sources",
  "signal",
]);

/** Validates options and builds the server config for stream `name`. */
export function buildStreamConfig(rt: Runtime, name: string, input: unknown): Partial<StreamConfig> & { name: string } {
  assertName("stream", name);
  const o = v.optionsObject("options", input);
  v.rejectUnknown(o, KNOWN);
  const subjects = v.subjectList("subjects", o.subjects);
  const sources = sourceList(rt, o.sources);
  if (subjects.length === 0 && sources.length === 0) {
    throw validationError("subjects", "a stream needs at least one subject or source");
  }
  const maxAgeMs = v.durationMs("maxAgeMs", o.maxAgeMs);
  const maxEvents = v.integer("maxEvents", o.maxEvents, 1);
  const maxEventsPerSubject = v.integer("maxEventsPerSubject", o.maxEventsPerSubject, 1);
  const maxBytes = v.integer("maxBytes", o.maxBytes, 1);
  const discard = v.oneOf("discardPolicy", o.discardPolicy, ["old", "new"] as const) ?? "old";
  const discardNewPerSubject = v.boolean("discardNewPerSubject", o.discardNewPerSubject) ?? false;
  const storage = v.oneOf("storage", o.storage, ["file", "memory"] as const) ?? "file";
  const replicas = v.integer("replicas", o.replicas, 1, 5) ?? 1;
  const givenDedupe = v.durationMs("deduplicationWindowMs", o.deduplicationWindowMs, 1);
  if (givenDedupe !== undefined && maxAgeMs !== undefined && maxAgeMs > 0 && givenDedupe > maxAgeMs) {
    throw validationError("deduplicationWindowMs", "cannot be longer than maxAgeMs");
  }
  // The server refuses a window longer than the max age, so the default shrinks to fit.
  const dedupe = givenDedupe ?? Math.min(DEFAULT_DEDUPLICATION_WINDOW_MS, maxAgeMs || DEFAULT_DEDUPLICATION_WINDOW_MS);
  const maxEventSize = v.integer("maxEventSize", o.maxEventSize, 1, 2 ** 31 - 1);
  if (discardNewPerSubject) {
    if (discard !== "new" || maxEventsPerSubject === undefined) {
      throw validationError("discardNewPerSubject", 'needs discardPolicy: "new" and maxEventsPerSubject');
    }
    requireServer(rt.nc, [2, 9, 0], "discardNewPerSubject");
  }
  const config: Partial<StreamConfig> & { name: string } = {
    name,
    subjects,
    max_age: toNanos(maxAgeMs ?? 0),
    max_msgs: maxEvents ?? -1,
    max_msgs_per_subject: maxEventsPerSubject ?? -1,
    max_bytes: maxBytes ?? -1,
    max_msg_size: maxEventSize ?? -1,
    discard: discard as StreamConfig["discard"],
    storage: storage as StreamConfig["storage"],
    num_replicas: replicas,
    duplicate_window: toNanos(dedupe),
  };
  if (discardNewPerSubject) config.discard_new_per_subject = true;
  if (sources.length > 0) config.sources = sources;
  return config;
}

/** Creates stream `name` or updates it to `options`; see `Events.ensureStream`. */
export async function ensureStream(rt: Runtime, name: string, options?: StreamOptions): Promise<StreamDescription> {
  const config = buildStreamConfig(rt, name, options);
  const signal = v.signal("signal", options?.signal);
  throwIfAborted(signal);
  const jsm = await rt.jsm();
  const run = async (): Promise<StreamDescription> => {
    let existing: StreamInfo | undefined;
    try {
      existing = await jsm.streams.info(name);
    } catch (err) {
      if (!(err instanceof Error && err.name === "StreamNotFoundError")) throw err;
    }
    let info: StreamInfo;
    if (existing === undefined) {
      rt.logger.info("creating stream", { stream: name });
      info = await jsm.streams.add(config);
    } else {
      rt.logger.debug("updating stream", { stream: name });
      info = await jsm.streams.update(name, config);
    }
    verifyEcho(config, info.config);
    return { name, config: describeStream(info.config), created: existing === undefined };
  };
  return withManagementSpan(rt.telemetry, "ensureStream", { [Attr.Stream]: name }, async () => {
    try {
      return await raceAbort(run(), signal);
    } catch (err) {
      throw toWindshiftError(err, `ensureStream("${name}")`);
    }
  });
}

function verifyEcho(sent: Partial<StreamConfig>, got: StreamConfig): void {
  if (sent.discard_new_per_subject && !got.discard_new_per_subject) {
    throw new WindshiftError(
      ErrorCode.UnsupportedFeature,
      "the server ignored discardNewPerSubject: it needs nats-server 2.9 or newer",
    );
  }
}

/** Maps the server's stream config back to {@link StreamOptions} terms. */
export function describeStream(c: StreamConfig): Omit<StreamOptions, "signal"> {
  const out: {
    -readonly [K in keyof Omit<StreamOptions, "signal">]: StreamOptions[K];
  } = {
    subjects: [...(c.subjects ?? [])],
    discardPolicy: c.discard === "new" ? "new" : "old",
    discardNewPerSubject: c.discard_new_per_subject === true,
    storage: c.storage === "memory" ? "memory" : "file",
    replicas: c.num_replicas,
    deduplicationWindowMs: toMs(c.duplicate_window ?? 0),
  };
  if (c.max_age > 0) out.maxAgeMs = toMs(c.max_age);
  if (c.max_msgs > 0) out.maxEvents = c.max_msgs;
  if (c.max_msgs_per_subject > 0) out.maxEventsPerSubject = c.max_msgs_per_subject;
  if (c.max_bytes > 0) out.maxBytes = c.max_bytes;
  if (c.max_msg_size > 0) out.maxEventSize = c.max_msg_size;
  if (c.sources && c.sources.length > 0) out.sources = c.sources.map(describeSource);
  return out;
}

function describeSource(s: StreamSource): StreamSourceOptions {
  const from: SourceStart =
    s.opt_start_seq !== undefined && s.opt_start_seq > 0
      ? { id: s.opt_start_seq }
      : s.opt_start_time
        ? { time: new Date(s.opt_start_time) }
        : { start: true };
  const transforms = (s as { subject_transforms?: { src: string }[] }).subject_transforms;
  const subjects = s.filter_subject ? [s.filter_subject] : (transforms?.map((t) => t.src) ?? []);
  return subjects.length > 0 ? { stream: s.name, from, subjects } : { stream: s.name, from };
}

function sourceList(rt: Runtime, value: unknown): StreamSource[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw validationError("sources", "must be an array");
  return value.map((item: unknown, i) => {
    const field = `sources[${i}]`;
    const o = v.optionsObject(field, item);
    v.rejectUnknown(o, new Set(["stream", "from", "subjects"]), field);
    assertName(`${field}.stream`, o.stream);
    const source: StreamSource = { name: o.stream };
    applySourceStart(source, parsePosition(`${field}.from`, o.from, false));
    const subjects = v.subjectList(`${field}.subjects`, o.subjects);
    if (subjects.length === 1) source.filter_subject = subjects[0] as string;
    if (subjects.length > 1) {
      requireServer(rt.nc, [2, 10, 0], `several subjects on source "${o.stream}"`);
      Object.assign(source, { subject_transforms: subjects.map((src) => ({ src, dest: "" })) });
    }
    return source;
  });
}

function applySourceStart(source: StreamSource, from: Position | undefined): void {
  if (from?.kind === "id") source.opt_start_seq = from.id;
  if (from?.kind === "time") source.opt_start_time = from.time.toISOString();
}
