import type { DescMessage, Registry } from "@bufbuild/protobuf";
import { validationError } from "../errors.js";
import { assertRegistry, assertSchema } from "../internal/codec.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import { type Retry, type RetryOptions, resolveRetry, SETTLE_RETRY } from "../internal/retry.js";
import * as v from "../internal/validate.js";

/** Options for `subscribe`. */
export interface SubscribeOptions<Desc extends DescMessage = DescMessage> {
  /** Decode every event as this message type; `event.data` is typed by it. */
  readonly schema?: Desc;
  /**
   * Decode events by their type name (`WS-Data-Type`) when one consumer
   * carries several types. Not together with `schema`.
   */
  readonly registry?: Registry;
  /**
   * How many events may be fetched ahead of your loop: requested from the
   * engine or waiting in the subscription's buffer. Their processing timeout
   * runs while they wait (auto-ping keeps them alive; without it, keep this
   * small for slow handlers). Closing gives back what was never handed out.
   * @default 50
   */
  readonly prefetch?: number;
  /**
   * While an event is neither acked nor rejected, ping it every quarter of
   * the consumer's processing timeout so that it is not redelivered (to this
   * or another subscriber) behind a slow handler: handed-out events and those
   * still waiting in the buffer. Stops when the event is settled or the
   * subscription closes.
   * @default true
   */
  readonly autoPing?: boolean;
  /**
   * Stop auto-pinging an event once it has been held this long since it was
   * delivered (handed out, or waiting in the buffer): the engine then
   * redelivers it after its processing timeout, to this or another
   * subscriber, as it would without auto-ping. A cap for a loop or handler
   * that may hang; a handler working on an event for longer on purpose keeps
   * it with `ping()`. Logged once per event. Needs `autoPing`.
   * @default none: auto-ping keeps an unsettled event alive until the subscription closes
   */
  readonly maxAutoPingMs?: number;
  /**
   * Wait for the engine to confirm each ack, reject and ping (and retry until
   * it does). `false` sends them without waiting: faster, but a settlement
   * lost on the way shows up only as a redelivery.
   * @default true
   */
  readonly confirmAcks?: boolean;
  /**
   * How ack, reject and ping retry, unless a call says otherwise; `false` for
   * a single attempt.
   * @default from 10 ms, doubling up to 1 s, giving up after 5 s in total
   */
  readonly retry?: RetryOptions | boolean;
  /**
   * What happens when the consumer disappears under the subscription (deleted,
   * or removed by its inactive threshold): `"error"` ends the iteration with a
   * `NOT_FOUND` error; `"recreate"` creates the durable consumer again from its
   * last known configuration, starting at the oldest event this subscription
   * has not seen settled, and carries on (events may be delivered again).
   * @default "error"
   */
  readonly onConsumerDeleted?: "error" | "recreate";
  /**
   * How long `close()` waits for events already handed out to be settled
   * before it gives them back for redelivery. Leaving a `for await` loop does
   * not wait.
   * @default 5_000
   */
  readonly closeTimeoutMs?: number;
  /** Aborting ends the iteration cleanly, as `close()` does. */
  readonly signal?: AbortSignal;
}

/** The defaults of {@link SubscribeOptions}. */
export const subscribeDefaults: Defaults<SubscribeOptions> = Object.freeze({
  schema: undefined,
  registry: undefined,
  prefetch: 50,
  autoPing: true,
  maxAutoPingMs: undefined,
  confirmAcks: true,
  retry: undefined,
  onConsumerDeleted: "error",
  closeTimeoutMs: 5_000,
  signal: undefined,
});

/** How a subscription decodes `event.data`. */
export type Decoder = { readonly schema: DescMessage } | { readonly registry: Registry } | undefined;

/** Validated subscribe options. */
export interface SubscribeSettings {
  readonly decoder: Decoder;
  readonly prefetch: number;
  readonly autoPing: boolean;
  readonly maxAutoPingMs: number | undefined;
  readonly confirmAcks: boolean;
  readonly retry: Retry | undefined;
  readonly recreate: boolean;
  readonly closeTimeoutMs: number;
  readonly signal: AbortSignal | undefined;
}

/** Validates `options` into {@link SubscribeSettings}. */
export function resolveSubscribeOptions(options: unknown): SubscribeSettings {
  const o = mergeOptions<SubscribeOptions>("options", options, subscribeDefaults);
  if (o.schema !== undefined && o.registry !== undefined) {
    throw validationError("options", "give either schema or registry, not both");
  }
  let decoder: Decoder;
  if (o.schema !== undefined) {
    assertSchema("schema", o.schema);
    decoder = { schema: o.schema };
  } else if (o.registry !== undefined) {
    assertRegistry("registry", o.registry);
    decoder = { registry: o.registry };
  }
  const autoPing = v.boolean("autoPing", o.autoPing) as boolean;
  return {
    decoder,
    prefetch: v.integer("prefetch", o.prefetch, 1, 10_000) as number,
    autoPing,
    maxAutoPingMs: resolveMaxAutoPing(o.maxAutoPingMs, autoPing),
    confirmAcks: v.boolean("confirmAcks", o.confirmAcks) as boolean,
    retry: resolveRetry("retry", o.retry, SETTLE_RETRY),
    recreate: v.oneOf("onConsumerDeleted", o.onConsumerDeleted, ["error", "recreate"] as const) === "recreate",
    closeTimeoutMs: v.durationMs("closeTimeoutMs", o.closeTimeoutMs) as number,
    signal: v.signal("signal", o.signal),
  };
}

/** Validates `maxAutoPingMs`, which caps auto-ping and so means nothing without it. */
export function resolveMaxAutoPing(value: unknown, autoPing: boolean): number | undefined {
  const max = v.durationMs("maxAutoPingMs", value, 1);
  if (max !== undefined && !autoPing) {
    throw validationError("maxAutoPingMs", "caps auto-ping, which autoPing: false turns off; give one or the other");
  }
  return max;
}
