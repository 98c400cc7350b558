import {
  DiscardPolicy,
  type JetStreamManager,
  type StreamConfig as NatsStreamConfig,
  StorageType,
  type StreamInfo,
  type StreamSource,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { ErrorCode, WindshiftError } from "../../errors.js";
import type { Logger } from "../../internal/logger.js";
import type { Ensured, Position, SourceConfig, StreamConfig } from "../engine.js";
import { ownSubjectsOverlap, storageChange, subjectsOverlap } from "../errors.js";
import { isStreamNotFound, JsErrorCode, jsErrorCode } from "./errors.js";
import { requireServer } from "./server-version.js";

/** Milliseconds to the nanoseconds JetStream stores durations in. */
export function toNanos(ms: number): number {
  return ms * 1_000_000;
}

/** Nanoseconds from JetStream back to whole milliseconds. */
export function toMs(nanos: number): number {
  return Math.round(nanos / 1_000_000);
}

/**
 * The server config for `config`, every field windshift manages set
 * explicitly: nats.js merges an update over the stream's old config, so a
 * field left out would keep its old value (sources that should be removed,
 * say, or a `discard_new_per_subject` that no longer fits).
 */
export function toNatsStreamConfig(
  nc: NatsConnection,
  config: StreamConfig,
): Partial<NatsStreamConfig> & { name: string } {
  if (config.discardNewPerSubject) requireServer(nc, [2, 9, 0], "discardNewPerSubject");
  return {
    name: config.name,
    subjects: [...config.subjects],
    max_age: toNanos(config.maxAgeMs ?? 0),
    max_msgs: config.maxEvents ?? -1,
    max_msgs_per_subject: config.maxEventsPerSubject ?? -1,
    max_bytes: config.maxBytes ?? -1,
    max_msg_size: config.maxEventSize ?? -1,
    discard: config.discardPolicy === "new" ? DiscardPolicy.New : DiscardPolicy.Old,
    discard_new_per_subject: config.discardNewPerSubject,
    storage: config.storage === "memory" ? StorageType.Memory : StorageType.File,
    num_replicas: config.replicas,
    duplicate_window: toNanos(config.deduplicationWindowMs),
    sources: config.sources.map((source) => toNatsSource(nc, source)),
  };
}

function toNatsSource(nc: NatsConnection, source: SourceConfig): StreamSource {
  const out: StreamSource = { name: source.stream };
  const from = source.from;
  if (from.kind === "id") out.opt_start_seq = from.id;
  if (from.kind === "time") out.opt_start_time = from.time.toISOString();
  if (source.subjects.length === 1) out.filter_subject = source.subjects[0] as string;
  if (source.subjects.length > 1) {
    requireServer(nc, [2, 10, 0], `several subjects on source "${source.stream}"`);
    Object.assign(out, { subject_transforms: source.subjects.map((src) => ({ src, dest: "" })) });
  }
  return out;
}

/** The server's stream config in windshift's terms. */
export function fromNatsStreamConfig(c: NatsStreamConfig): StreamConfig {
  return {
    name: c.name,
    subjects: [...(c.subjects ?? [])],
    maxAgeMs: c.max_age > 0 ? toMs(c.max_age) : undefined,
    maxEvents: c.max_msgs > 0 ? c.max_msgs : undefined,
    maxEventsPerSubject: c.max_msgs_per_subject > 0 ? c.max_msgs_per_subject : undefined,
    maxBytes: c.max_bytes > 0 ? c.max_bytes : undefined,
    maxEventSize: c.max_msg_size > 0 ? c.max_msg_size : undefined,
    discardPolicy: c.discard === DiscardPolicy.New ? "new" : "old",
    discardNewPerSubject: c.discard_new_per_subject === true,
    storage: c.storage === StorageType.Memory ? "memory" : "file",
    replicas: c.num_replicas,
    deduplicationWindowMs: toMs(c.duplicate_window ?? 0),
    sources: (c.sources ?? []).map(fromNatsSource),
  };
}

function fromNatsSource(s: StreamSource): SourceConfig {
  const from: Position =
    s.opt_start_seq !== undefined && s.opt_start_seq > 0
      ? { kind: "id", id: s.opt_start_seq }
      : s.opt_start_time
        ? { kind: "time", time: new Date(s.opt_start_time) }
        : { kind: "start" };
  const transforms = (s as { subject_transforms?: { src: string }[] }).subject_transforms;
  const subjects = s.filter_subject ? [s.filter_subject] : (transforms?.map((t) => t.src) ?? []);
  return { stream: s.name, from, subjects };
}

/**
 * Creates the stream, or updates it to exactly `config`. `capturing` names
 * the streams whose subjects overlap a subject, to say which one a refused
 * subject belongs to.
 */
export async function ensureStream(
  jsm: JetStreamManager,
  nc: NatsConnection,
  logger: Logger,
  config: StreamConfig,
  capturing: (subject: string) => Promise<string[]>,
): Promise<Ensured<StreamConfig>> {
  const wanted = toNatsStreamConfig(nc, config);
  let existing: StreamInfo | undefined;
  try {
    existing = await jsm.streams.info(config.name);
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
  }
  let info: StreamInfo;
  try {
    if (existing === undefined) {
      logger.info("creating stream", { stream: config.name });
      info = await jsm.streams.add(wanted);
    } else {
      logger.debug("updating stream", { stream: config.name });
      info = await jsm.streams.update(config.name, wanted);
    }
  } catch (err) {
    throw await explainRefusal(err, config, existing, capturing);
  }
  if (config.discardNewPerSubject && !info.config.discard_new_per_subject) {
    throw new WindshiftError(
      ErrorCode.UnsupportedFeature,
      "the server ignored discardNewPerSubject: it needs nats-server 2.9 or newer",
    );
  }
  return { config: fromNatsStreamConfig(info.config), created: existing === undefined };
}

/**
 * The server's refusal of a stream config, explained where its text says
 * too little: which subject overlaps which stream, the storage change, the
 * replicas a single server cannot have. Other errors are returned as they are.
 */
async function explainRefusal(
  err: unknown,
  config: StreamConfig,
  existing: StreamInfo | undefined,
  capturing: (subject: string) => Promise<string[]>,
): Promise<unknown> {
  const code = jsErrorCode(err);
  const extra = { cause: err, details: { jsErrorCode: code } };
  const text = err instanceof Error ? err.message : "";
  if (code === JsErrorCode.SubjectsOverlap) {
    for (const subject of config.subjects) {
      const other = await capturing(subject).then(
        (names) => names.find((n) => n !== config.name),
        () => undefined,
      );
      if (other !== undefined) return subjectsOverlap(config.name, subject, other, extra);
    }
    return subjectsOverlap(config.name, undefined, undefined, extra);
  }
  const own = code === JsErrorCode.InvalidStreamConfig ? /subject "([^"]+)" overlaps with "([^"]+)"/.exec(text) : null;
  if (own !== null) return ownSubjectsOverlap(config.name, own[1] as string, own[2] as string, extra);
  if (code === JsErrorCode.InvalidStreamConfig && /storage type/i.test(text) && existing !== undefined) {
    const from = existing.config.storage === StorageType.Memory ? "memory" : "file";
    return storageChange(config.name, from, config.storage, extra);
  }
  if (code === JsErrorCode.ReplicasNotSupported) {
    return new WindshiftError(
      ErrorCode.Server,
      `ensureStream("${config.name}"): ${text}: replicas ${config.replicas} needs a clustered JetStream; use replicas: 1 on a single server`,
      { cause: err, details: { jsErrorCode: code, stream: config.name, replicas: config.replicas } },
    );
  }
  return err;
}
