import { EventImpl } from "../consume/delivered-event.js";
import type { Event } from "../consume/event.js";
import { validationError } from "../errors.js";
import { assertName, describe } from "../internal/names.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import { PUBLISH_RETRY, withRetry } from "../internal/retry.js";
import * as v from "../internal/validate.js";
import { isTransient } from "../publish/send.js";
import type { Runtime } from "../runtime.js";
import { MIN_STREAM_DURATION_MS } from "../streams/streams.js";
import type { Middleware } from "./options.js";

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
   * that long (at least 100 ms, the shortest age nats-server keeps). Applied
   * when the bucket is created.
   * @default 604_800_000 (7 days)
   */
  readonly ttlMs?: number;
  /**
   * Replicas of the bucket, when it is created.
   * @default 1
   */
  readonly replicas?: number;
}

/** The defaults of {@link IdempotentOptions}. */
export const idempotentDefaults: Defaults<IdempotentOptions> = Object.freeze({
  key: undefined,
  ttlMs: 7 * 86_400_000,
  replicas: 1,
});

const encoder = new TextEncoder();

/**
 * Opens (or creates) the key-value bucket `bucket` and returns middleware
 * that skips events whose key it holds (they are acked unhandled) and
 * records the key once the handler returns, with the event's
 * `<stream>:<id>` as the value. On JetStream the bucket is a standard NATS KV
 * bucket (stream `KV_<bucket>`); keys are stored base64url-encoded.
 *
 * An event whose handler finished but whose key could not be recorded (the
 * bucket unreachable for 20 s) is still acked, and logged: a later duplicate
 * would be handled again.
 */
export async function idempotent(rt: Runtime, bucket: string, options?: IdempotentOptions): Promise<Middleware> {
  assertName("bucket", bucket);
  const o = mergeOptions<IdempotentOptions>("options", options, idempotentDefaults);
  if (o.key !== undefined && typeof o.key !== "function") {
    throw validationError("key", `${describe(o.key)} is not a function`);
  }
  const keyOf = (o.key as IdempotentOptions["key"]) ?? ((event: Event) => event.headers.idempotencyKey);
  const ttlMs = v.durationMs("ttlMs", o.ttlMs, MIN_STREAM_DURATION_MS) as number;
  const replicas = v.integer("replicas", o.replicas, 1, 5) as number;
  const kv = await rt.engine.keyValue(bucket, { mode: "create", options: { ttlMs, replicas } }, undefined);
  // Events with the same key handled at once in this process go one after the other.
  const busy = new Map<string, Promise<void>>();

  const once = async (key: string, event: Event, next: () => Promise<void>): Promise<void> => {
    if ((await kv.get(key)) !== undefined) {
      rt.logger.debug("skipping an event whose key was processed", { bucket, key, id: event.id });
      return;
    }
    await next();
    // A handler that gave its event back itself has not done the work.
    if (event instanceof EventImpl && event.outcome !== undefined && event.outcome !== "ack") return;
    try {
      const value = encoder.encode(`${event.stream}:${event.id}`);
      await withRetry(() => kv.put(key, value), PUBLISH_RETRY, { clock: rt.clock, shouldRetry: isTransient });
    } catch (err) {
      rt.logger.error("could not record a processed key; a duplicate of this event would be handled again", {
        bucket,
        key,
        id: event.id,
        error: String(err),
      });
    }
  };

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
}
