import type { Message } from "@bufbuild/protobuf";
import { context } from "@opentelemetry/api";
import { abortError } from "./abort.js";
import { type Backoff, type BackoffDecider, type BackoffOptions, resolveBackoff } from "./backoff.js";
import { type DeadLetterOptions, type DeadLetterReason, describeError, sendDeadLetter } from "./dead-letter.js";
import { ErrorCode, isWindshiftError, validationError, WindshiftError } from "./errors.js";
import { type Event, EventImpl, isDataErrorOf } from "./event.js";
import { type FallbackHandler, isRouter, PermanentError, type Router } from "./handlers.js";
import { assertName, assertSubject, describe, isValidSubject } from "./names.js";
import { toWindshiftError } from "./nats-errors.js";
import { streamsCapturing } from "./publish.js";
import type { Runtime } from "./runtime.js";
import type { SubscriptionStatus } from "./status.js";
import { type SubscriptionImpl, subscribe } from "./subscription.js";
import * as v from "./validate.js";

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

/** Options for `process`. */
export interface ProcessOptions {
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
   * successors, as JetStream redelivers it.
   * @default no ordering: any event may start as soon as there is room
   */
  readonly orderBy?: "subject" | ((event: Event) => string);
  /**
   * How many deliveries an event gets before it is given up on (dead-lettered,
   * or rejected permanently without a dead-letter subject). Never more than
   * the consumer's own `maxDeliver`, after which the server stops delivering.
   * @default the consumer's `maxDeliver`, unlimited when it has none
   */
  readonly maxAttempts?: number;
  /**
   * The delay before a failed event is delivered again: exponential by its
   * delivery attempt, or your own decider.
   * @default exponential from 1 s, doubling up to 5 min, up to 20 % jitter
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
  /** Runs around every handler call, first in the list outermost. @default none */
  readonly middleware?: readonly Middleware[];
  /**
   * How long `close()` waits for running handlers before it gives their
   * events back for redelivery.
   * @default 10_000
   */
  readonly closeTimeoutMs?: number;
  /**
   * How many events may be fetched ahead of the handlers; with `orderBy`, also
   * how many may wait for their key.
   * @default twice `concurrency`, at least 16
   */
  readonly maxPendingEvents?: number;
  /** As for `subscribe`. @default true */
  readonly confirmAcks?: boolean;
  /** As for `subscribe`: keeps slow handlers' events from being redelivered. @default true */
  readonly autoPing?: boolean;
  /** As for `subscribe`. @default "error" */
  readonly onConsumerDeleted?: "error" | "recreate";
  /** Aborting closes the processor, as `close()` does. */
  readonly signal?: AbortSignal;
}

/** What a processor has done so far. */
export interface ProcessorStats {
  /** Handlers running now. */
  readonly running: number;
  /** Events waiting for an earlier event with the same `orderBy` key. */
  readonly waiting: number;
  /** Events acked because the handler (or a middleware that skipped it) returned. */
  readonly acked: number;
  /** Events the handler settled itself. */
  readonly settledByHandler: number;
  /**
   * Failed attempts: the handler or a middleware threw, the event's data could
   * not be decoded, no route took its type, or its `orderBy` key failed.
   */
  readonly failed: number;
  /** Failed events given back for another attempt. */
  readonly retried: number;
  /** Events published to the dead-letter subject and rejected permanently. */
  readonly deadLettered: number;
  /** Events rejected permanently without a dead letter (none configured). */
  readonly rejected: number;
}

/**
 * A running processor: it takes events from a consumer, hands each to its
 * handler, and settles it by the outcome. Stop it with {@link Processor.close}
 * or `await using`.
 */
export interface Processor extends AsyncDisposable {
  /** The stream read from. */
  readonly stream: string;
  /** The consumer read through. */
  readonly consumer: string;
  /**
   * Settles once the processor has stopped: resolves after `close()`, rejects
   * with the error that stopped it otherwise (say, its consumer was deleted).
   */
  readonly closed: Promise<void>;
  /** A snapshot of what the processor has done so far. */
  readonly stats: ProcessorStats;
  /**
   * Stops taking events and gives back those not started yet, waits up to
   * `closeTimeoutMs` for running handlers to finish and settles their events,
   * then gives back the events of handlers still running. Safe to call more
   * than once; never rejects.
   */
  close(): Promise<void>;
  /** What happens to the underlying subscription (see `Subscription.status`). */
  status(): AsyncIterableIterator<SubscriptionStatus>;
}

const KNOWN = new Set([
  "concurrency",
  "orderBy",
  "maxAttempts",
  "backoff",
  "deadLetter",
  "middleware",
  "closeTimeoutMs",
  "maxPendingEvents",
  "confirmAcks",
  "autoPing",
  "onConsumerDeleted",
  "signal",
]);
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

interface Resolved {
  /** The dead-letter subject when it is fixed (checked at start). */
  deadLetterSubject: string | undefined;
  concurrency: number;
  keyOf: ((event: Event) => string) | undefined;
  maxAttempts: number | undefined;
  backoff: Backoff;
  deadLetter: ((event: Event) => string) | undefined;
  middleware: readonly Middleware[];
  closeTimeoutMs: number;
  maxPending: number;
  signal: AbortSignal | undefined;
}

function resolveOptions(input: unknown): Resolved & { subscribe: Record<string, unknown> } {
  const o = v.optionsObject("options", input);
  v.rejectUnknown(o, KNOWN);
  const concurrency = v.integer("concurrency", o.concurrency, 1, 10_000) ?? 1;
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
      assertSubject("deadLetter.subject", d.subject, false);
      const subject = d.subject;
      deadLetterSubject = subject;
      deadLetter = () => subject;
    }
  }
  const middleware = o.middleware ?? [];
  if (!Array.isArray(middleware) || middleware.some((m) => typeof m !== "function")) {
    throw validationError("middleware", `${describe(middleware)} is not an array of functions`);
  }
  const maxPending = v.integer("maxPendingEvents", o.maxPendingEvents, 1, 10_000) ?? Math.max(16, 2 * concurrency);
  const closeTimeoutMs = v.durationMs("closeTimeoutMs", o.closeTimeoutMs) ?? DEFAULT_CLOSE_TIMEOUT_MS;
  const signal = v.signal("signal", o.signal);
  return {
    deadLetterSubject,
    concurrency,
    keyOf,
    maxAttempts,
    backoff: resolveBackoff(o.backoff),
    deadLetter,
    middleware: [...(middleware as Middleware[])],
    closeTimeoutMs,
    maxPending,
    signal,
    subscribe: {
      maxPendingEvents: maxPending,
      closeTimeoutMs,
      ...(o.confirmAcks === undefined ? {} : { confirmAcks: o.confirmAcks }),
      ...(o.autoPing === undefined ? {} : { autoPing: o.autoPing }),
      ...(o.onConsumerDeleted === undefined ? {} : { onConsumerDeleted: o.onConsumerDeleted }),
    },
  };
}

/** Starts a processor; see `Events.process`. */
export async function startProcessor(
  rt: Runtime,
  stream: string,
  consumer: string,
  handlers: Router | FallbackHandler,
  options?: ProcessOptions,
): Promise<Processor> {
  assertName("stream", stream);
  assertName("consumer", consumer);
  let router: Router | undefined;
  let fallback: FallbackHandler | undefined;
  if (isRouter(handlers)) router = handlers;
  else if (typeof handlers === "function") fallback = handlers;
  else {
    throw validationError("handlers", `${describe(handlers)} is not a router (router(), handle()) or a function`);
  }
  const opts = resolveOptions(options);
  if (opts.signal?.aborted) throw abortError(opts.signal);
  if (opts.deadLetterSubject !== undefined) await assertCaptured(rt, opts.deadLetterSubject);
  const sub = await subscribe<Message>(rt, stream, consumer, {
    ...opts.subscribe,
    ...(router === undefined || router.types.length === 0 ? {} : { registry: router.registry() }),
  });
  const processor = new ProcessorImpl(rt, sub, router, fallback, opts);
  processor.start();
  return processor;
}

/** Fails unless a stream captures the dead-letter subject: finding out at the first dead letter is too late. */
async function assertCaptured(rt: Runtime, subject: string): Promise<void> {
  let names: string[];
  try {
    names = await streamsCapturing(rt, subject, 5_000);
  } catch (err) {
    throw toWindshiftError(err, `checking the dead-letter subject "${subject}"`);
  }
  if (names.length === 0) {
    throw new WindshiftError(ErrorCode.UnboundSubject, `no stream captures the dead-letter subject "${subject}"`, {
      details: { subject, field: "deadLetter.subject" },
    });
  }
}

/** A handler's failure that a router raises for an event of a type it has no route for. */
class UnknownType extends Error {
  override name = "UnknownType";
  readonly permanent: boolean;
  constructor(type: string, permanent: boolean) {
    super(type === "" ? "the event has no WS-Data-Type header" : `no handler for type "${type}"`);
    this.permanent = permanent;
  }
}

class ProcessorImpl implements Processor {
  readonly stream: string;
  readonly consumer: string;
  readonly closed: Promise<void>;
  readonly #rt: Runtime;
  readonly #sub: SubscriptionImpl<Message>;
  readonly #router: Router | undefined;
  readonly #fallback: FallbackHandler | undefined;
  readonly #opts: Resolved;
  readonly #maxAttempts: number;
  #resolveClosed!: () => void;
  #rejectClosed!: (err: unknown) => void;
  #closing = false;
  #closeStarted: Promise<void> | undefined;
  #running = 0;
  #waiting = 0;
  /** Per `orderBy` key with a running handler: the events waiting behind it. */
  readonly #queues = new Map<string, EventImpl[]>();
  #room: (() => void) | undefined;
  #loop: Promise<void> = Promise.resolve();
  /** Why the subscription ended by itself, if it did. */
  #failure: unknown;
  readonly #done = new Set<Promise<void>>();
  /** Aborted when closing stops waiting for running handlers. */
  readonly #abandoned = new AbortController();
  #acked = 0;
  #settledByHandler = 0;
  #failed = 0;
  #retried = 0;
  #deadLettered = 0;
  #rejected = 0;
  readonly #onAbort = (): void => {
    void this.close();
  };

  constructor(
    rt: Runtime,
    sub: SubscriptionImpl<Message>,
    router: Router | undefined,
    fallback: FallbackHandler | undefined,
    opts: Resolved,
  ) {
    this.#rt = rt;
    this.#sub = sub;
    this.stream = sub.stream;
    this.consumer = sub.consumer;
    this.#router = router;
    this.#fallback = fallback;
    this.#opts = opts;
    const wanted = opts.maxAttempts ?? sub.maxDeliver;
    if (wanted > sub.maxDeliver) {
      rt.logger.warn("maxAttempts is above the consumer's maxDeliver; using maxDeliver", {
        stream: this.stream,
        consumer: this.consumer,
        maxAttempts: wanted,
        maxDeliver: sub.maxDeliver,
      });
    }
    this.#maxAttempts = Math.min(wanted, sub.maxDeliver);
    this.closed = new Promise<void>((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    // Whoever does not await `closed` still sees the failure in the log.
    this.closed.catch(() => {});
  }

  get stats(): ProcessorStats {
    return {
      running: this.#running,
      waiting: this.#waiting,
      acked: this.#acked,
      settledByHandler: this.#settledByHandler,
      failed: this.#failed,
      retried: this.#retried,
      deadLettered: this.#deadLettered,
      rejected: this.#rejected,
    };
  }

  status(): AsyncIterableIterator<SubscriptionStatus> {
    return this.#sub.status();
  }

  start(): void {
    const { signal } = this.#opts;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#loop = this.#take();
    void this.#loop.then(() => {
      // The subscription ended by itself (a failure): finish what runs, then report.
      if (!this.#closing) void this.#stop();
    });
  }

  /** Takes events from the subscription while there is room for them. */
  async #take(): Promise<void> {
    const iterator = this.#sub[Symbol.asyncIterator]();
    try {
      for (;;) {
        if (!this.#hasRoom()) {
          await new Promise<void>((resolve) => {
            this.#room = resolve;
          });
        }
        if (this.#closing) return;
        const next = await iterator.next();
        if (next.done) return;
        const event = next.value as EventImpl;
        if (this.#closing) {
          // Taken just as close() began: give it back with the rest.
          const reply = event.takeBack();
          if (reply !== undefined) EventImpl.nakUnhanded(this.#rt.nc, reply);
          return;
        }
        this.#dispatch(event);
      }
    } catch (err) {
      this.#failure = err;
    }
  }

  #hasRoom(): boolean {
    return this.#closing || (this.#running < this.#opts.concurrency && this.#waiting < this.#opts.maxPending);
  }

  #wake(): void {
    const room = this.#room;
    if (room !== undefined && this.#hasRoom()) {
      this.#room = undefined;
      room();
    }
  }

  #dispatch(event: EventImpl): void {
    const keyOf = this.#opts.keyOf;
    if (keyOf === undefined) {
      this.#start(event, undefined);
      return;
    }
    let key: string;
    try {
      key = keyOf(event);
      if (typeof key !== "string") throw validationError("orderBy", `returned ${describe(key)}, not a string`);
    } catch (err) {
      // An event no route takes needs no order: its type's policy applies as
      // usual. Any other event without a key fails this attempt.
      const routed = this.#router === undefined || this.#router.route(event.type) !== undefined;
      this.#start(event, undefined, routed ? err : undefined);
      return;
    }
    const queue = this.#queues.get(key);
    if (queue === undefined) {
      this.#queues.set(key, []);
      this.#start(event, key);
    } else {
      queue.push(event);
      this.#waiting++;
    }
  }

  #start(event: EventImpl, key: string | undefined, keyError?: unknown): void {
    this.#running++;
    const done = this.#handle(event, keyError).then(() => {
      this.#running--;
      this.#done.delete(done);
      if (key !== undefined) {
        const queue = this.#queues.get(key) as EventImpl[];
        const next = queue.shift();
        if (next === undefined) this.#queues.delete(key);
        else {
          this.#waiting--;
          this.#start(next, key);
        }
      }
      this.#wake();
    });
    this.#done.add(done);
  }

  /** Runs the handler chain and settles the event by its outcome. Never rejects. */
  async #handle(event: EventImpl, keyError: unknown): Promise<void> {
    let failed = keyError !== undefined;
    let error: unknown = keyError;
    if (!failed) {
      try {
        await context.with(event.context, () => this.#chain(event, 0));
      } catch (err) {
        failed = true;
        error = err;
      }
    }
    try {
      if (event.givenBack) return;
      if (event.settled) {
        this.#settledByHandler++;
        if (failed) this.#failed++;
        return;
      }
      if (!failed) {
        await event.ack();
        this.#acked++;
        return;
      }
      this.#failed++;
      event.recordFailure(error);
      await this.#settleFailure(event, error);
    } catch (err) {
      if (isWindshiftError(err, ErrorCode.AlreadySettled)) {
        // The handler settled it without waiting for the result, or close gave it back.
        if (!this.#closing) this.#settledByHandler++;
        return;
      }
      this.#rt.logger.warn("settling a processed event failed; the server will redeliver it", {
        stream: this.stream,
        consumer: this.consumer,
        id: event.id,
        error: String(err),
      });
    }
  }

  #chain(event: EventImpl, index: number): Promise<void> {
    const middleware = this.#opts.middleware[index];
    if (middleware === undefined) return this.#invoke(event);
    return Promise.resolve(middleware(event, () => this.#chain(event, index + 1))).then(() => {});
  }

  async #invoke(event: EventImpl): Promise<void> {
    const router = this.#router;
    if (router === undefined) {
      await (this.#fallback as FallbackHandler)(event, this.#abandoned.signal);
      return;
    }
    const route = router.route(event.type);
    if (route !== undefined) {
      // Decoded by the subscription's registry of the routed types; INVALID_DATA when it cannot be.
      await route.handler(event.data, event, this.#abandoned.signal);
      return;
    }
    const unknown = router.unknown;
    if (typeof unknown === "function") {
      await unknown(event, this.#abandoned.signal);
      return;
    }
    throw new UnknownType(event.type, unknown === "reject");
  }

  /** A failed event: retried after the backoff delay, or given up on. */
  async #settleFailure(event: EventImpl, error: unknown): Promise<void> {
    let reason: DeadLetterReason | undefined;
    if (error instanceof UnknownType) reason = error.permanent ? "unknown-type" : undefined;
    else if (error instanceof PermanentError) reason = "permanent";
    else if (isDataErrorOf(error, event)) reason = "invalid-data";
    let delayMs = 0;
    if (reason === undefined) {
      delayMs = this.#delayFor(event, error);
      if (delayMs < 0) reason = "permanent";
      else if (event.deliveryAttempt >= this.#maxAttempts) {
        reason = error instanceof UnknownType ? "unknown-type" : "max-attempts";
      }
    }
    if (reason === undefined) {
      await event.reject(delayMs > 0 ? { delayMs } : undefined);
      this.#retried++;
      this.#rt.logger.debug("handler failed; event given back", {
        stream: this.stream,
        id: event.id,
        attempt: event.deliveryAttempt,
        delayMs,
        error: describeError(error),
      });
      return;
    }
    await this.#giveUp(event, reason, error);
  }

  #delayFor(event: EventImpl, error: unknown): number {
    try {
      return this.#opts.backoff(event, error);
    } catch (err) {
      this.#rt.logger.error("the backoff decider failed; retrying after 1 s", { id: event.id, error: String(err) });
      return 1_000;
    }
  }

  /** Dead-letters (when configured) and terminates an event. */
  async #giveUp(event: EventImpl, reason: DeadLetterReason, error: unknown): Promise<void> {
    const facts = {
      stream: this.stream,
      consumer: this.consumer,
      id: event.id,
      subject: event.subject,
      attempt: event.deliveryAttempt,
      reason,
      error: describeError(error),
    };
    const chooseSubject = this.#opts.deadLetter;
    if (chooseSubject === undefined) {
      await event.reject({ permanent: true });
      this.#rejected++;
      this.#rt.logger.error("event rejected permanently (no dead-letter subject configured)", facts);
      return;
    }
    try {
      const subject = chooseSubject(event);
      if (!isValidSubject(subject, false)) {
        throw validationError("deadLetter.subject", `returned ${describe(subject)}, not a subject`);
      }
      await sendDeadLetter(this.#rt, subject, event, reason, error);
    } catch (err) {
      // Not dead-lettered: keep the event and try again on its next delivery.
      const delayMs = Math.max(0, this.#delayFor(event, error));
      this.#rt.logger.error("dead-lettering failed; the event is given back", {
        ...facts,
        deadLetterError: String(err),
        delayMs,
      });
      await event.reject(delayMs > 0 ? { delayMs } : undefined);
      this.#retried++;
      return;
    }
    await event.reject({ permanent: true });
    this.#deadLettered++;
    this.#rt.logger.warn("event dead-lettered", facts);
  }

  close(): Promise<void> {
    if (!this.#closing) void this.#stop();
    return this.closed.catch(() => {});
  }

  /** Stops taking events, gives back the unstarted ones and lets running handlers finish. */
  #stop(): Promise<void> {
    if (this.#closeStarted !== undefined) return this.#closeStarted;
    this.#closing = true;
    this.#opts.signal?.removeEventListener("abort", this.#onAbort);
    const unstarted: EventImpl[] = [];
    for (const [key, queue] of this.#queues) {
      unstarted.push(...queue);
      this.#queues.set(key, []);
    }
    this.#waiting = 0;
    unstarted.sort((a, b) => a.id - b.id);
    this.#wake();
    this.#closeStarted = (async () => {
      // Waits up to closeTimeoutMs for running handlers, then gives back their events.
      await this.#sub.closeGivingBack(unstarted);
      await this.#loop;
      const failure = this.#failure;
      if (failure === undefined) {
        this.#abandon();
        this.#resolveClosed();
        return;
      }
      // The subscription ended by itself and did not wait: let running handlers finish.
      await waitAtMost(Promise.all(this.#done), this.#opts.closeTimeoutMs);
      this.#abandon();
      this.#rt.logger.error("processor stopped", {
        stream: this.stream,
        consumer: this.consumer,
        error: String(failure),
      });
      this.#rejectClosed(
        isWindshiftError(failure)
          ? failure
          : new WindshiftError(ErrorCode.Server, `processor stopped: ${String(failure)}`, { cause: failure }),
      );
    })();
    return this.#closeStarted;
  }

  /** Tells handlers still running that nobody waits for them any more. */
  #abandon(): void {
    if (this.#running === 0) return;
    this.#abandoned.abort(
      new WindshiftError(ErrorCode.Closed, "the processor closed without waiting for this handler any longer"),
    );
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function waitAtMost(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    work,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
