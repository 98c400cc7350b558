/**
 * Processors as they run: the take loop over a subscription, handlers with
 * bounded concurrency and per-key order, and settlement by outcome.
 *
 * @module
 */
import type { Message } from "@bufbuild/protobuf";
import { context } from "@opentelemetry/api";
import type { EventImpl } from "../consume/delivered-event.js";
import { type IdleOptions, Listeners, waitForIdle } from "../consume/idle.js";
import { prepareSubscription, release, type SubscriptionImpl } from "../consume/open-subscription.js";
import type { SubscriptionStatus } from "../consume/status.js";
import { ErrorCode, isWindshiftError, validationError, WindshiftError } from "../errors.js";
import { raceAbort, throwIfAborted } from "../internal/abort.js";
import { AsyncQueue } from "../internal/async-queue.js";
import { waitAtMost } from "../internal/clock.js";
import { assertName, describe } from "../internal/names.js";
import type { Runtime } from "../runtime.js";
import { loadRules, type RuleCheck } from "../validation/rules.js";
import { assertCaptured } from "./dead-letter.js";
import { type FallbackHandler, type Router, type RouteTable, routeTableOf } from "./handlers.js";
import { KeyQueue } from "./key-queue.js";
import { type ProcessOptions, type ProcessSettings, resolveProcessOptions } from "./options.js";
import { Outcomes, UnknownType } from "./outcomes.js";
import type { Processor, ProcessorStats } from "./processor.js";

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
  const routes = routeTableOf(handlers);
  if (routes === undefined && typeof handlers !== "function") {
    throw validationError("handlers", `${describe(handlers)} is not a router (router(), handle()) or a function`);
  }
  const settings = resolveProcessOptions(options);
  const { signal } = settings;
  if (settings.validate === true && routes === undefined) {
    throw validationError(
      "validate",
      "needs typed handlers (router() or handle()); a plain handler can call event.validate() on a typed event",
    );
  }
  throwIfAborted(signal);
  // Typed handlers follow the client's default; a plain handler has no schema to check against.
  const check =
    (settings.validate ?? rt.validate) === true && routes !== undefined
      ? await raceAbort(loadRules("validate"), signal)
      : undefined;
  if (settings.deadLetterSubject !== undefined) {
    await raceAbort(assertCaptured(rt, settings.deadLetterSubject, signal), signal);
  }
  const sub = await prepareSubscription<Message>(
    rt,
    stream,
    consumer,
    {
      ...settings.subscribe,
      ...(routes === undefined || routes.types.length === 0 ? {} : { registry: routes.registry() }),
    },
    signal,
  );
  // Aborted while it was prepared: it never started, so there is nothing to close.
  throwIfAborted(signal);
  const processor = new ProcessorImpl(
    rt,
    sub,
    routes,
    routes === undefined ? (handlers as FallbackHandler) : undefined,
    settings,
    check,
  );
  // Listens for the abort from here on; nothing was awaited since the check above.
  processor.start();
  return processor;
}

class ProcessorImpl implements Processor {
  readonly stream: string;
  readonly consumer: string;
  readonly closed: Promise<WindshiftError | undefined>;
  readonly #rt: Runtime;
  readonly #sub: SubscriptionImpl<Message>;
  readonly #routes: RouteTable | undefined;
  readonly #fallback: FallbackHandler | undefined;
  /** Checks each event's message against its rules (the `validate` option). */
  readonly #check: RuleCheck | undefined;
  readonly #settings: ProcessSettings;
  readonly #outcomes: Outcomes;
  readonly #keys = new KeyQueue<EventImpl>();
  /** Wakes the take loop when a handler finishes. */
  readonly #room = new AsyncQueue<void>({ maxSize: 1 });
  #resolveClosed!: (failure: WindshiftError | undefined) => void;
  #closing = false;
  #stopping: Promise<void> | undefined;
  #running = 0;
  #loop: Promise<void> = Promise.resolve();
  /** Why the subscription ended by itself, if it did. */
  #failure: unknown;
  /** Called when the last running handler finishes (closing waits for it). */
  #idle: (() => void) | undefined;
  /** Told whenever a handler finishes, and when closing starts (see `idle()`). */
  readonly #changes = new Listeners();
  /** Aborted when closing stops waiting for running handlers. */
  readonly #abandoned = new AbortController();
  readonly #onAbort = (): void => {
    void this.close();
  };

  constructor(
    rt: Runtime,
    sub: SubscriptionImpl<Message>,
    routes: RouteTable | undefined,
    fallback: FallbackHandler | undefined,
    settings: ProcessSettings,
    check: RuleCheck | undefined,
  ) {
    this.#check = check;
    this.#rt = rt;
    this.#sub = sub;
    this.stream = sub.stream;
    this.consumer = sub.consumer;
    this.#routes = routes;
    this.#fallback = fallback;
    this.#settings = settings;
    const wanted = settings.maxAttempts ?? sub.maxDeliver;
    if (wanted > sub.maxDeliver) {
      rt.logger.warn("maxAttempts is above the consumer's maxDeliveryAttempts; using maxDeliveryAttempts", {
        stream: this.stream,
        consumer: this.consumer,
        maxAttempts: wanted,
        maxDeliveryAttempts: sub.maxDeliver,
      });
    }
    this.#outcomes = new Outcomes(rt, {
      stream: this.stream,
      consumer: this.consumer,
      maxAttempts: Math.min(wanted, sub.maxDeliver),
      backoff: settings.backoff,
      deadLetter: settings.deadLetter,
      closing: () => this.#closing,
    });
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  get stats(): ProcessorStats {
    return { running: this.#running, waiting: this.#keys.waiting, ...this.#outcomes.counts() };
  }

  status(): AsyncIterableIterator<SubscriptionStatus> {
    return this.#sub.status();
  }

  /** Starts the subscription and the loop that takes its events, and listens for the abort. */
  start(): void {
    this.#settings.signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#sub.start();
    this.#loop = this.#take();
    void this.#loop.then(() => {
      // The subscription ended by itself (a failure): finish what runs, then report.
      if (!this.#closing) void this.#stop();
    });
  }

  /** Takes events from the subscription while there is room for them. */
  async #take(): Promise<void> {
    const events = this.#sub[Symbol.asyncIterator]();
    try {
      for (;;) {
        while (!this.#hasRoom()) {
          if ((await this.#room.next()).done) return;
        }
        if (this.#closing) return;
        const next = await events.next();
        if (next.done) return;
        const event = next.value;
        if (this.#closing) {
          // Taken just as close() began: give it back with the rest.
          release(event.takeBack());
          return;
        }
        this.#dispatch(event);
      }
    } catch (err) {
      this.#failure = err;
    }
  }

  #hasRoom(): boolean {
    return (
      this.#closing ||
      (this.#running < this.#settings.concurrency && this.#keys.waiting < this.#settings.maxWaitingEvents)
    );
  }

  #dispatch(event: EventImpl): void {
    const keyOf = this.#settings.keyOf;
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
      const routed = this.#routes === undefined || this.#routes.route(event.type) !== undefined;
      this.#start(event, undefined, routed ? err : undefined);
      return;
    }
    if (this.#keys.admit(key, event)) this.#start(event, key);
  }

  #start(event: EventImpl, key: string | undefined, keyError?: unknown): void {
    this.#running++;
    void this.#run(event, key, keyError);
  }

  /**
   * Runs the handler chain, settles the event by its outcome, then makes room:
   * the next event of its key starts, or the loop takes a new one. Never
   * rejects.
   */
  async #run(event: EventImpl, key: string | undefined, keyError: unknown): Promise<void> {
    let failure: { error: unknown } | undefined = keyError === undefined ? undefined : { error: keyError };
    if (failure === undefined) {
      try {
        await context.with(event.context, this.#chain, this, event, 0);
      } catch (error) {
        failure = { error };
      }
    }
    await this.#outcomes.settle(event, failure);
    this.#running--;
    const next = key === undefined ? undefined : this.#keys.done(key);
    if (next !== undefined) this.#start(next, key);
    else if (this.#running === 0) this.#idle?.();
    this.#room.push();
    this.#changes.notify();
  }

  /** Resolves once no handler runs. */
  #whenIdle(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idle = () => {
        this.#idle = undefined;
        resolve();
      };
    });
  }

  #chain(event: EventImpl, index: number): Promise<void> {
    const middleware = this.#settings.middleware[index];
    if (middleware === undefined) return this.#invoke(event);
    return Promise.resolve(middleware(event, () => this.#chain(event, index + 1))).then(() => {});
  }

  async #invoke(event: EventImpl): Promise<void> {
    const routes = this.#routes;
    const signal = this.#abandoned.signal;
    if (routes === undefined) {
      await (this.#fallback as FallbackHandler)(event, signal);
      return;
    }
    const route = routes.route(event.type);
    if (route !== undefined) {
      // Decoded by the subscription's registry of the routed types; INVALID_DATA when it cannot be.
      const data = event.data;
      if (this.#check !== undefined) event.checkRules(this.#check);
      await route.handler(data, event, signal);
      return;
    }
    const unknown = routes.unknown;
    if (typeof unknown === "function") {
      await unknown(event, signal);
      return;
    }
    throw new UnknownType(event.type, unknown === "nak");
  }

  close(): Promise<void> {
    return this.#stop();
  }

  idle(options?: IdleOptions): Promise<void> {
    return waitForIdle(
      this.#sub.idleTarget({
        kind: "processor",
        running: () => this.#running,
        waiting: () => this.#keys.waiting,
        closing: () => this.#closing,
        changes: this.#changes,
      }),
      options,
    );
  }

  /** Stops taking events, gives back the unstarted ones and lets running handlers finish. */
  #stop(): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    this.#closing = true;
    this.#settings.signal?.removeEventListener("abort", this.#onAbort);
    const unstarted = this.#keys.drain().sort((a, b) => a.id - b.id);
    this.#room.end();
    this.#changes.notify();
    this.#stopping = (async () => {
      // Waits up to closeTimeoutMs for running handlers, then gives back their events.
      await this.#sub.closeGivingBack(unstarted);
      await this.#loop;
      const failure = this.#failure;
      if (failure !== undefined) {
        // The subscription ended by itself and did not wait: let running handlers
        // finish, in real time (it waits for the user's code, whatever the clock).
        await waitAtMost(this.#whenIdle(), this.#settings.closeTimeoutMs);
      }
      this.#abandon();
      if (failure === undefined) {
        this.#resolveClosed(undefined);
        return;
      }
      this.#rt.logger.error("processor stopped", {
        stream: this.stream,
        consumer: this.consumer,
        error: String(failure),
      });
      this.#resolveClosed(
        isWindshiftError(failure)
          ? failure
          : new WindshiftError(ErrorCode.Server, `processor stopped: ${String(failure)}`, { cause: failure }),
      );
    })();
    return this.#stopping;
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
