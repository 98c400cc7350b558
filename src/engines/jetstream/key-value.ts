import {
  DiscardPolicy,
  type JetStreamManager,
  type StreamConfig as NatsStreamConfig,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { ErrorCode, isWindshiftError, WindshiftError } from "../../errors.js";
import type { Logger } from "../../internal/logger.js";
import type {
  Appended,
  AppendOptions,
  KeyValue,
  KeyValueEntry,
  KeyValueOpen,
  KeyValueOptions,
  KeyValueWriteOptions,
  OutgoingEvent,
} from "../engine.js";
import { bucketNotFound, wrongRevision } from "../errors.js";
import { apiError, isStreamNotFound, JsErrorCode, permissionDenied, toWindshiftError } from "./errors.js";
import type { Requester, RequestFailures } from "./requester.js";
import { toNanos } from "./streams.js";

/** The header NATS key-value uses to mark deletes. */
const KV_OPERATION = "KV-Operation";
const TIMEOUT_MS = 5_000;
const NO_VALUE = new Uint8Array(0);

/** What every bucket's stream has, whatever its settings (as the NATS key-value clients make it). */
const BUCKET_CONFIG = {
  retention: RetentionPolicy.Limits,
  storage: StorageType.File,
  max_msgs_per_subject: 1,
  discard: DiscardPolicy.New,
  allow_rollup_hdrs: true,
  deny_delete: true,
  deny_purge: false,
  allow_direct: true,
} as const satisfies Partial<NatsStreamConfig>;

/** The stream settings that follow from a bucket's options. */
function bucketSettings(options: KeyValueOptions) {
  return {
    num_replicas: options.replicas,
    max_age: toNanos(options.ttlMs),
    duplicate_window: toNanos(Math.min(options.ttlMs, 120_000)),
  };
}

/** What a bucket needs from the engine. */
export interface KeyValueContext {
  readonly logger: Logger;
  jsm(): Promise<JetStreamManager>;
  /** The requester publishes go through. */
  requester(): Requester;
  append(event: OutgoingEvent, options: AppendOptions): Promise<Appended>;
}

/**
 * Opens (creating or updating it, as `how` says) the standard NATS key-value
 * bucket `bucket`: stream `KV_<bucket>` on subjects `$KV.<bucket>.>`, one
 * value per key. Keys are stored base64url-encoded, so any string is a key.
 * Revisions are stream sequences; compare-and-set is an expected last
 * subject sequence.
 */
export async function openKeyValue(ctx: KeyValueContext, bucket: string, how: KeyValueOpen): Promise<KeyValue> {
  const stream = `KV_${bucket}`;
  const jsm = await ctx.jsm();
  try {
    const found = await jsm.streams.info(stream).catch((err: unknown) => {
      if (isStreamNotFound(err)) return undefined;
      throw err;
    });
    if (how.mode === "open") {
      if (found === undefined) throw bucketNotFound(bucket);
    } else if (found === undefined) {
      await jsm.streams.add({
        ...bucketSettings(how.options),
        ...BUCKET_CONFIG,
        name: stream,
        subjects: [`$KV.${bucket}.>`],
      });
      ctx.logger.info("key-value bucket created", { bucket, ttlMs: how.options.ttlMs });
    } else if (how.mode === "ensure") {
      const wanted = bucketSettings(how.options);
      const c = found.config;
      if (
        c.max_age !== wanted.max_age ||
        c.num_replicas !== wanted.num_replicas ||
        c.duplicate_window !== wanted.duplicate_window
      ) {
        await jsm.streams.update(stream, wanted);
        ctx.logger.info("key-value bucket updated", {
          bucket,
          ttlMs: how.options.ttlMs,
          replicas: how.options.replicas,
        });
      }
    }
  } catch (err) {
    throw toWindshiftError(err, `opening key-value bucket "${bucket}"`);
  }
  const subjectOf = (key: string): string => `$KV.${bucket}.${Buffer.from(key, "utf8").toString("base64url")}`;
  /**
   * The key's last record, delete markers included; `undefined` when it has
   * none. Sent through the requester, as publishes are, so that a read in
   * flight when the connection drops fails at once instead of after its
   * whole timeout.
   */
  const last = async (key: string, signal: AbortSignal | undefined): Promise<KvRecordRead | undefined> => {
    const what = `key-value bucket "${bucket}": reading key "${key}"`;
    const reply = await ctx
      .requester()
      .request(`$JS.API.STREAM.MSG.GET.${stream}`, encoder.encode(JSON.stringify({ last_by_subj: subjectOf(key) })), {
        headers: undefined,
        timeoutMs: TIMEOUT_MS,
        signal,
        failures: readFailures(what),
      });
    const answer = reply.json<MsgGetResponse>();
    if (answer.error !== undefined) {
      if (answer.error.err_code === JsErrorCode.NoMessageFound) return undefined;
      throw apiError(what, answer.error);
    }
    const message = answer.message;
    if (message === undefined) throw new WindshiftError(ErrorCode.Server, `${what}: an answer without a message`);
    return {
      seq: message.seq,
      data: message.data === undefined ? NO_VALUE : new Uint8Array(Buffer.from(message.data, "base64")),
      deleted: isDeleteMarker(operationOf(message.hdrs)),
    };
  };
  const write = async (key: string, record: KvRecord, options: KeyValueWriteOptions | undefined): Promise<number> => {
    const append = (expectedLastSubjectId: number | undefined) =>
      ctx.append(
        {
          subject: subjectOf(key),
          payload: record.value,
          headers: record.deleted ? [[KV_OPERATION, "DEL"]] : [],
          idempotencyKey: undefined,
          expectedLastId: undefined,
          expectedLastSubjectId,
        },
        { timeoutMs: TIMEOUT_MS, signal: options?.signal },
      );
    const expected = options?.expectedRevision;
    try {
      return (await append(expected)).id;
    } catch (err) {
      if (expected === undefined || !isWindshiftError(err, ErrorCode.WrongSequence)) throw err;
      // "Absent" includes deleted: then the delete marker's revision is the one to expect.
      const marker = expected === 0 ? await last(key, options?.signal) : undefined;
      if (marker === undefined || !marker.deleted) throw inBucket(err, key, expected);
      try {
        return (await append(marker.seq)).id;
      } catch (again) {
        throw isWindshiftError(again, ErrorCode.WrongSequence) ? inBucket(again, key, expected) : again;
      }
    }
  };
  /** A failed revision check, in the bucket's terms rather than its stream's (`$KV.<bucket>.<base64>` subjects). */
  const inBucket = (err: WindshiftError, key: string, expected: number): WindshiftError => {
    const actual = err.details.actual;
    const mapped = wrongRevision(bucket, key, expected, typeof actual === "number" ? actual : undefined);
    return new WindshiftError(mapped.code, mapped.message, { cause: err, details: mapped.details });
  };
  return {
    async get(key: string, signal?: AbortSignal): Promise<KeyValueEntry | undefined> {
      const stored = await last(key, signal);
      if (stored === undefined || stored.deleted) return undefined;
      return { value: stored.data, revision: stored.seq };
    },
    put: (key, value, options) => write(key, { value, deleted: false }, options),
    async delete(key, options) {
      await write(key, { value: NO_VALUE, deleted: true }, options);
    },
  };
}

/** The last record of a key, as read. */
interface KvRecordRead {
  readonly seq: number;
  readonly data: Uint8Array;
  readonly deleted: boolean;
}

/** The answer to `$JS.API.STREAM.MSG.GET`. */
interface MsgGetResponse {
  readonly message?: { readonly seq: number; readonly data?: string; readonly hdrs?: string };
  readonly error?: { readonly code?: number; readonly err_code?: number; readonly description?: string };
}

const encoder = new TextEncoder();

/** How a failed read is described. */
function readFailures(what: string): RequestFailures {
  return {
    noResponders: () => new WindshiftError(ErrorCode.Unavailable, `${what}: JetStream did not answer (no responders)`),
    timeout: () => new WindshiftError(ErrorCode.Timeout, `${what}: timed out`),
    closed: () => new WindshiftError(ErrorCode.Closed, `${what}: the connection is closed`),
    denied: (denial, cause) => permissionDenied(what, denial, cause),
  };
}

/** The `KV-Operation` header in a stored message's headers (base64 of the NATS header block). */
function operationOf(hdrs: string | undefined): string | undefined {
  if (hdrs === undefined) return undefined;
  const prefix = `${KV_OPERATION.toLowerCase()}:`;
  for (const line of Buffer.from(hdrs, "base64").toString("utf8").split("\r\n")) {
    if (line.toLowerCase().startsWith(prefix)) return line.slice(prefix.length).trim();
  }
  return undefined;
}

/** What one write stores. */
interface KvRecord {
  readonly value: Uint8Array;
  readonly deleted: boolean;
}

function isDeleteMarker(operation: string | undefined): boolean {
  return operation === "DEL" || operation === "PURGE";
}
