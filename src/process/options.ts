import type { Event } from "../consume/event.js";
import { resolveMaxAutoPing, type SubscribeOptions } from "../consume/options.js";
import { validationError } from "../errors.js";
import type { BackoffOptions } from "../internal/backoff.js";
import { assertSubject, describe } from "../internal/names.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import * as v from "../internal/validate.js";
import { readValidate } from "../validation/rules.js";
import { type BackoffDecider, type RetryDelay, resolveProcessBackoff } from "./backoff.js";

/**
 * Runs around every handler call, in the event's trace context: do something
 * before, `await next()` to run the rest of the chain and the handler, do
 * something after (or skip `next()` to have the event acked unhandled). A
 * throw counts as the handler's failure.
 *
 * @example
 * ```ts
 * const timing: Middleware = async (event, next) => {
 *   const started = performance.now();
 *   try {
 *     await next();
 *   } finally {
 *     console.log(event.type, event.id, performance.now() - started, "ms");
 *   }
 * };
 * ```
 */
export type Middleware = (event: Event, next: () => Promise<void>) => unknown;

/** Where a processor sends the events it gives up on. */
export interface DeadLetterOptions {
  /**
   * The subject dead letters are published to (a stream must capture it), or
   * a function choosing it per event, e.g. `(event) => \`dlq.${event.subject}\``.
   */
  readonly subject: string | ((event: Event) => string);
}

/**
 * Options for `process`. `confirmAcks`, `autoPing`, `maxAutoPingMs` and
 * `onConsumerDeleted` are the processor's subscription's, as for `subscribe`.
 */
export interface ProcessOptions
  extends Pick<SubscribeOptions, "confirmAcks" | "autoPing" | "maxAutoPingMs" | "onConsumerDeleted"> {
  /**
   * How many events are handled at once.
   * @default 1
   */
  readonly concurrency?: number;
  /**
   * Handle events with the same key one at a time, in the order the consumer
   * delivers them (stream order), while events with other keys run in
   * parallel: `"subject"` keys by the event's subject, a function by whatever
   * it returns. An event given back for a retry comes again after its
   * successors, as the engine redelivers it.
   * @default no ordering: any event may start as soon as there is room
   */
  readonly orderBy?: "subject" | ((event: Event) => string);
  /**
   * How many deliveries an event gets before it is given up on (dead-lettered,
   * or rejected permanently without a dead-letter subject). Never more than
   * the consumer's own `maxDeliveryAttempts`, after which it is not delivered
   * again.
   * @default the consumer's `maxDeliveryAttempts`, unlimited when it has none
   */
  readonly maxAttempts?: number;
  /**
   * The delay before a failed event is delivered again: exponential by its
   * delivery attempt, or your own decider.
   * @default from 1 s, doubling up to 5 min, up to 20 % jitter
   */
  readonly backoff?: BackoffOptions | BackoffDecider;
  /**
   * Publish events given up on to a dead-letter subject (payload and headers
   * as they were, plus `WS-Dead-Letter-*` headers saying why), then reject
   * them permanently. Without it they are rejected permanently and logged as
   * errors; they stay in their stream.
   * @default none
   */
  readonly deadLetter?: DeadLetterOptions;
  /**
   * Runs around every handler call, first in the list outermost.
   * @default none
   */
  readonly middleware?: readonly Middleware[];
  /**
   * How long `close()` waits for running handlers before it gives their
   * events back for redelivery.
   * @default 10_000
   */
  readonly closeTimeoutMs?: number;
  /**
   * How many events may wait for a handler: fetched ahead of the handlers
   * and, with `orderBy`, waiting behind an earlier event with the same key.
   * @default twice `concurrency`, at least 16
   */
  readonly maxWaitingEvents?: number;
  /**
   * Check each event's message against its schema's `buf.validate` rules
   * before its handler runs: an event that breaks them is given up on at once
   * (no retry can help), dead-lettered with reason `invalid` and its
   * violations in `WS-Dead-Letter-Violations`. Needs typed handlers (a
   * router) and `@bufbuild/protovalidate`.
   * @default the client's `validate` option (typed handlers only)
   */
  readonly validate?: boolean;
  /** Aborting closes the processor, as `close()` does, also while it starts. */
  readonly signal?: AbortSignal;
}

/** The defaults of {@link ProcessOptions}. */
export const processDefaults: Defaults<ProcessOptions> = Object.freeze({
  concurrency: 1,
  orderBy: undefined,
  maxAttempts: undefined,
  backoff: undefined,
  deadLetter: undefined,
  middleware: [],
  closeTimeoutMs: 10_000,
  maxWaitingEvents: undefined,
  confirmAcks: true,
  autoPing: true,
  maxAutoPingMs: undefined,
  onConsumerDeleted: "error",
  validate: undefined,
  signal: undefined,
});

/** Validated process options. */
export interface ProcessSettings {
  readonly concurrency: number;
  readonly keyOf: ((event: Event) => string) | undefined;
  readonly maxAttempts: number | undefined;
  readonly backoff: RetryDelay;
  /** Chooses an event's dead-letter subject; `undefined` without dead letters. */
  readonly deadLetter: ((event: Event) => string) | undefined;
  /** The dead-letter subject when it is fixed (checked at start). */
  readonly deadLetterSubject: string | undefined;
  readonly middleware: readonly Middleware[];
  /** The `validate` option; `undefined` to follow the client's. */
  readonly validate: boolean | undefined;
  readonly closeTimeoutMs: number;
  readonly maxWaitingEvents: number;
  readonly signal: AbortSignal | undefined;
  /** What the processor's subscription is opened with (without the decoder). */
  readonly subscribe: SubscribeOptions;
}

/** Validates `options` into {@link ProcessSettings}. */
export function resolveProcessOptions(options: unknown): ProcessSettings {
  const o = mergeOptions<ProcessOptions>("options", options, processDefaults);
  const concurrency = v.integer("concurrency", o.concurrency, 1, 10_000) as number;
  let keyOf: ((event: Event) => string) | undefined;
  if (o.orderBy === "subject") keyOf = (event) => event.subject;
  else if (typeof o.orderBy === "function") keyOf = o.orderBy as (event: Event) => string;
  else if (o.orderBy !== undefined) {
    throw validationError("orderBy", `${describe(o.orderBy)} is not "subject" or a function`);
  }
  const maxAttempts =
    o.maxAttempts === Number.POSITIVE_INFINITY ? o.maxAttempts : v.integer("maxAttempts", o.maxAttempts, 1);
  let deadLetter: ((event: Event) => string) | undefined;
  let deadLetterSubject: string | undefined;
  if (o.deadLetter !== undefined) {
    const d = v.optionsObject("deadLetter", o.deadLetter);
    v.rejectUnknown(d, new Set(["subject"]), "deadLetter");
    if (typeof d.subject === "function") {
      deadLetter = d.subject as (event: Event) => string;
    } else {
      assertSubject("deadLetter.subject", d.subject);
      const subject = d.subject;
      deadLetterSubject = subject;
      deadLetter = () => subject;
    }
  }
  const middleware = o.middleware;
  if (!Array.isArray(middleware) || middleware.some((m) => typeof m !== "function")) {
    throw validationError("middleware", `${describe(middleware)} is not an array of functions`);
  }
  const maxWaitingEvents =
    v.integer("maxWaitingEvents", o.maxWaitingEvents, 1, 10_000) ?? Math.max(16, 2 * concurrency);
  const closeTimeoutMs = v.durationMs("closeTimeoutMs", o.closeTimeoutMs) as number;
  const autoPing = v.boolean("autoPing", o.autoPing) as boolean;
  const maxAutoPingMs = resolveMaxAutoPing(o.maxAutoPingMs, autoPing);
  return {
    concurrency,
    keyOf,
    maxAttempts,
    backoff: resolveProcessBackoff(o.backoff),
    deadLetter,
    deadLetterSubject,
    middleware: [...(middleware as Middleware[])],
    closeTimeoutMs,
    maxWaitingEvents,
    validate: readValidate("validate", o.validate),
    signal: v.signal("signal", o.signal),
    subscribe: {
      prefetch: maxWaitingEvents,
      closeTimeoutMs,
      confirmAcks: v.boolean("confirmAcks", o.confirmAcks) as boolean,
      autoPing,
      ...(maxAutoPingMs === undefined ? {} : { maxAutoPingMs }),
      onConsumerDeleted: v.oneOf("onConsumerDeleted", o.onConsumerDeleted, ["error", "recreate"] as const) as
        | "error"
        | "recreate",
    },
  };
}
