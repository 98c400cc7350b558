import { DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig } from "@nats-io/jetstream";
import { headers as createHeaders } from "@nats-io/nats-core";
import { validationError } from "./errors.js";
import type { Event, EventImpl } from "./event.js";
import { assertName, describe } from "./names.js";
import { toWindshiftError } from "./nats-errors.js";
import type { Middleware } from "./processor.js";
import { send } from "./publish.js";
import { PUBLISH_RETRY } from "./retry.js";
import { type Runtime, toNanos } from "./runtime.js";
import * as v from "./validate.js";

/** Options for `idempotent`. */
export interface IdempotentOptions {
  /**
   * The key that identifies an event's work; events without one (`undefined`)
   * are handled every time.
   * @default the event's idempotency key (`event.headers.idempotencyKey`)
   */
  readonly key?: (event: Event) => string | undefined;
  /**
   * How long a processed key is remembered: events with it are skipped for
   * that long. Applied when the bucket is created.
   * @default 604_800_000 (7 days)
   */
  readonly ttlMs?: number;
  /**
   * Replicas of the bucket's stream, when it is created.
   * @default 1
   */
  readonly replicas?: number;
}

const KNOWN = new Set(["key", "ttlMs", "replicas"]);
const DEFAULT_TTL_MS = 7 * 86_400_000;
const KV_OPERATION = "KV-Operation";

/**
 * Creates (or opens) the JetStream key-value bucket `bucket` and returns
 * middleware that skips events whose key it holds (they are acked unhandled)
 * and records the key once the handler returns. The bucket is a standard
 * NATS KV bucket (stream `KV_<bucket>`); keys are stored base64url-encoded.
 *
 * An event whose handler finished but whose key could not be recorded (the
 * bucket unreachable for 20 s) is still acked, and logged: a later duplicate
 * would be handled again.
 */
export async function idempotent(rt: Runtime, bucket: string, options?: IdempotentOptions): Promise<Middleware> {
  assertName("bucket", bucket);
  const o = v.optionsObject("options", options);
  v.rejectUnknown(o, KNOWN);
  if (o.key !== undefined && typeof o.key !== "function") {
    throw validationError("key", `${describe(o.key)} is not a function`);
  }
  const keyOf = (o.key as IdempotentOptions["key"]) ?? ((event: Event) => event.headers.idempotencyKey);
  const ttlMs = v.durationMs("ttlMs", o.ttlMs, 1) ?? DEFAULT_TTL_MS;
  const replicas = v.integer("replicas", o.replicas, 1, 5) ?? 1;
  const stream = `KV_${bucket}`;
  const jsm = await rt.jsm();
  try {
    const found = await jsm.streams.info(stream).catch((err: unknown) => {
      if (err instanceof Error && err.name === "StreamNotFoundError") return undefined;
      throw err;
    });
    if (found === undefined) {
      const config: Partial<StreamConfig> & { name: string } = {
        name: stream,
        subjects: [`$KV.${bucket}.>`],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: replicas,
        max_msgs_per_subject: 1,
        max_age: toNanos(ttlMs),
        duplicate_window: toNanos(Math.min(ttlMs, 120_000)),
        discard: DiscardPolicy.New,
        allow_rollup_hdrs: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
      };
      await jsm.streams.add(config);
      rt.logger.info("idempotency bucket created", { bucket, ttlMs });
    }
  } catch (err) {
    throw toWindshiftError(err, `idempotent("${bucket}")`);
  }
  const value = new TextEncoder().encode("done");
  // Events with the same key handled at once in this process go one after the other.
  const busy = new Map<string, Promise<void>>();
  return async (event, next) => {
    const key = keyOf(event);
    if (key === undefined || key === "") {
      await next();
      return;
    }
    for (let ahead = busy.get(key); ahead !== undefined; ahead = busy.get(key)) await ahead;
    let release!: () => void;
    busy.set(
      key,
      new Promise<void>((resolve) => {
        release = resolve;
      }),
    );
    try {
      await once(key, event, next);
    } finally {
      busy.delete(key);
      release();
    }
  };

  async function once(key: string, event: Event, next: () => Promise<void>): Promise<void> {
    const subject = `$KV.${bucket}.${Buffer.from(key, "utf8").toString("base64url")}`;
    let stored: Awaited<ReturnType<typeof jsm.streams.getMessage>>;
    try {
      stored = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    } catch (err) {
      throw toWindshiftError(err, `idempotent("${bucket}"): looking up key "${key}"`);
    }
    const operation = stored?.header?.get(KV_OPERATION);
    if (stored !== null && operation !== "DEL" && operation !== "PURGE") {
      rt.logger.debug("skipping an event whose key was processed", { bucket, key, id: event.id });
      return;
    }
    await next();
    // A handler that gave its event back itself has not done the work.
    const settlement = (event as EventImpl).settlement;
    if (settlement === "nak" || settlement === "term") return;
    const h = createHeaders();
    h.set("WS-Processed-Id", `${event.stream}:${event.id}`);
    try {
      await send(rt, subject, value, h, { timeoutMs: 5_000, retry: PUBLISH_RETRY, signal: undefined });
    } catch (err) {
      rt.logger.error("could not record a processed key; a duplicate of this event would be handled again", {
        bucket,
        key,
        id: event.id,
        error: String(err),
      });
    }
  }
}
