/**
 * Subscriptions as they run: opened on a consumer, fed by the engine,
 * handing out events and settling them through their settler.
 *
 * @module
 */
import type { Message } from "@bufbuild/protobuf";
import type { Attributes, Span } from "@opentelemetry/api";
import type { ConsumerState, Delivery, Feed, FeedSink, FeedStatus } from "../engines/engine.js";
import { ErrorCode, type WindshiftError } from "../errors.js";
import { abortError, raceAbort } from "../internal/abort.js";
import { AsyncQueue } from "../internal/async-queue.js";
import { sleep } from "../internal/clock.js";
import { assertName } from "../internal/names.js";
import type { Runtime } from "../runtime.js";
import { Attr } from "../telemetry/attributes.js";
import { startProcessSpan } from "../telemetry/spans.js";
import { extractTraceContext } from "../telemetry/trace-context.js";
import { Headers } from "../wire.js";
import { EventImpl } from "./delivered-event.js";
import { type IdleOptions, type IdleTarget, Listeners, waitForIdle } from "./idle.js";
import { resolveSubscribeOptions, type SubscribeOptions, type SubscribeSettings } from "./options.js";
import { Settler } from "./settler.js";
import { StatusChannel, type SubscriptionStatus } from "./status.js";
import type { IdleOwner, Subscription } from "./subscription.js";

const DATA_TYPE_KEY = Headers.DataType.toLowerCase();

/** Opens a subscription and starts it; see `Events.subscribe`. */
export async function subscribe<T extends Message>(
  rt: Runtime,
  stream: string,
  consumer: string,
  options?: SubscribeOptions,
): Promise<SubscriptionImpl<T>> {
  const sub = await prepareSubscription<T>(rt, stream, consumer, options, undefined);
  sub.start();
  return sub;
}

/**
 * Validates and looks the consumer up, but starts nothing: the subscription
 * holds no timer and no feed until `start()`, so whoever gave up on it in
 * between (a processor aborted while it starts) can simply drop it.
 * `startSignal` cancels this step in place of the options' `signal`.
 */
export async function prepareSubscription<T extends Message>(
  rt: Runtime,
  stream: string,
  consumer: string,
  options: SubscribeOptions | undefined,
  startSignal: AbortSignal | undefined,
): Promise<SubscriptionImpl<T>> {
  assertName("stream", stream);
  assertName("consumer", consumer);
  const settings = resolveSubscribeOptions(options);
  const signal = startSignal ?? settings.signal;
  if (signal?.aborted) throw abortError(signal);
  const state = await raceAbort(rt.engine.consumerState(stream, consumer, signal), signal);
  return new SubscriptionImpl<T>(rt, state, settings);
}

/**
 * The one {@link Subscription} implementation: the feed's sink, a buffer read
 * by one loop, and the settler that owns what was handed out.
 */
export class SubscriptionImpl<T extends Message> implements Subscription<T>, FeedSink {
  readonly stream: string;
  readonly consumer: string;
  readonly processingTimeoutMs: number;
  /** The consumer's limit on deliveries per event; `Infinity` when it has none. */
  readonly maxDeliver: number;
  readonly closed: Promise<WindshiftError | undefined>;
  readonly #rt: Runtime;
  readonly #settings: SubscribeSettings;
  readonly #settler: Settler<EventImpl<T>>;
  readonly #queue: AsyncQueue<Delivery, EventImpl<T>>;
  readonly #status = new StatusChannel();
  /** Told when the subscription starts closing (see `idle()`). */
  readonly #changes = new Listeners();
  #feed: Feed | undefined;
  #state: ConsumerState;
  /** The id the consumer would resume from if it had to be recreated. */
  #resumeFrom: number;
  #closing = false;
  /** Why the subscription ended by itself, if it did. */
  #failure: WindshiftError | undefined;
  /** The shutdown, once it started; resolves with the failure that ended the subscription. */
  #closedWith: Promise<WindshiftError | undefined> | undefined;
  #resolveClosed!: (error: WindshiftError | undefined) => void;
  readonly #onAbort = (): void => {
    void this.close();
  };

  constructor(rt: Runtime, state: ConsumerState, settings: SubscribeSettings) {
    this.#rt = rt;
    this.#settings = settings;
    this.#state = state;
    this.stream = state.stream;
    this.consumer = state.name;
    this.processingTimeoutMs = state.config.processingTimeoutMs;
    this.maxDeliver = state.config.maxDeliveryAttempts ?? Number.POSITIVE_INFINITY;
    this.#resumeFrom = state.ackFloor + 1;
    const subjects = state.config.subjects;
    this.#settler = new Settler<EventImpl<T>>(
      rt,
      {
        stream: this.stream,
        consumer: this.consumer,
        // A subject can be anything; the consumer's single filter (or else the
        // stream) is the low-cardinality stand-in the conventions ask metrics for.
        template: subjects.length === 1 ? (subjects[0] as string) : this.stream,
        confirmAcks: settings.confirmAcks,
        retry: settings.retry,
        autoPing: settings.autoPing,
        maxAutoPingMs: settings.maxAutoPingMs,
        processingTimeoutMs: this.processingTimeoutMs,
      },
      () => this.#queue.queued(),
    );
    this.#queue = new AsyncQueue({
      take: (delivery) => this.#handOut(delivery),
      onReturn: () => this.#shutdown({ wait: false }).then(() => {}),
      what: "a subscription",
    });
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  start(): void {
    const { signal } = this.#settings;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    if (signal?.aborted) this.#onAbort();
    if (this.#closing) return;
    this.#settler.start();
    this.#feed = this.#rt.engine.consume(this.stream, this.consumer, this, { limit: this.#settings.prefetch });
  }

  // FeedSink

  buffered(): number {
    return this.#queue.size;
  }

  deliver(delivery: Delivery): void {
    if (this.#closing) {
      release(delivery);
      return;
    }
    this.#settler.received(delivery);
    this.#queue.push(delivery);
  }

  fail(error: WindshiftError): void {
    if (this.#closing) return;
    if (error.code === ErrorCode.NotFound) this.#status.push({ type: "consumer-deleted" });
    if (error.code === ErrorCode.NotFound && this.#settings.recreate && this.#state.config.name !== undefined) {
      void this.#recreate();
      return;
    }
    this.#rt.logger.error("subscription failed", {
      stream: this.stream,
      consumer: this.consumer,
      error: error.message,
    });
    this.#failure = error;
    void this.#shutdown({ wait: false });
  }

  ended(): void {
    void this.close();
  }

  report(status: FeedStatus): void {
    this.#status.push(status);
  }

  // Subscription

  status(): AsyncIterableIterator<SubscriptionStatus> {
    return this.#status.iterate();
  }

  [Symbol.asyncIterator](): AsyncIterator<EventImpl<T>> {
    return this.#queue[Symbol.asyncIterator]();
  }

  close(): Promise<void> {
    return this.#shutdown({ wait: true }).then(() => {});
  }

  /**
   * Closes as `close()` does, and gives back `unstarted` (handed out, but a
   * processor never started them) together with the buffered events, so the
   * engine redelivers them all in stream order.
   */
  closeGivingBack(unstarted: readonly EventImpl[]): Promise<void> {
    return this.#shutdown({ wait: true, unstarted }).then(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  idle(options?: IdleOptions): Promise<void> {
    return waitForIdle(this.idleTarget(), options);
  }

  /**
   * What `idle()` waits on: this subscription's buffer and unsettled events,
   * plus, for a processor over it, what the processor holds.
   */
  idleTarget(owner?: IdleOwner): IdleTarget {
    return {
      rt: this.#rt,
      stream: this.stream,
      consumer: this.consumer,
      kind: owner === undefined ? "subscription" : owner.kind,
      work: () => ({
        running: owner?.running() ?? 0,
        waiting: owner?.waiting() ?? 0,
        buffered: this.#queue.size,
        unsettledIds: this.#settler
          .unsettledEvents()
          .map((event) => event.id)
          .sort((a, b) => a - b),
      }),
      closing: () => this.#closing || owner?.closing() === true,
      failure: () => this.#failure,
      watch: (listener) => {
        const removers = [this.#settler.changes.add(listener), this.#changes.add(listener)];
        if (owner !== undefined) removers.push(owner.changes.add(listener));
        return () => {
          for (const remove of removers) remove();
        };
      },
    };
  }

  /** A buffered delivery becomes an event the moment the loop takes it. */
  #handOut(delivery: Delivery): EventImpl<T> {
    this.#feed?.pull();
    const t = this.#rt.telemetry;
    const producer = extractTraceContext(delivery.headers);
    let span: Span | undefined;
    let context = producer;
    if (t.tracing()) {
      const attributes: Attributes = {
        ...t.connection(),
        [Attr.OperationType]: "process",
        [Attr.OperationName]: "process",
        [Attr.Destination]: delivery.subject,
        [Attr.Subscription]: delivery.consumer,
        [Attr.Stream]: delivery.stream,
        [Attr.MessageId]: String(delivery.id),
        [Attr.DeliveryAttempt]: delivery.deliveryAttempt,
      };
      const type = delivery.headers.get(DATA_TYPE_KEY);
      if (type) attributes[Attr.DataType] = type;
      if (t.recordBodySize) attributes[Attr.BodySize] = delivery.payload.length;
      ({ span, context } = startProcessSpan(t, producer, attributes, delivery.subject));
    }
    const event = new EventImpl<T>(delivery, this.#settler, this.#settings.decoder, { context, span });
    this.#settler.track(event);
    if (event.id >= this.#resumeFrom) this.#resumeFrom = event.id + 1;
    return event;
  }

  /** Creates the durable consumer again where this subscription left off, and reads from it. */
  async #recreate(): Promise<void> {
    void this.#feed?.stop();
    this.#feed = undefined;
    // What was buffered came from the old consumer: the new one delivers it again.
    let from = this.#resumeFrom;
    for (const delivery of this.#queue.drain()) from = Math.min(from, delivery.id);
    from = Math.min(from, this.#settler.oldestUnsettled() ?? from);
    const config = { ...this.#state.config, from: { kind: "id", id: from } as const };
    this.#rt.logger.warn("consumer deleted; recreating it", { stream: this.stream, consumer: this.consumer, from });
    let delayMs = 100;
    while (!this.#closing) {
      try {
        await this.#rt.engine.ensureConsumer(this.stream, config, undefined);
        this.#status.push({ type: "consumer-recreated", fromId: from });
        if (!this.#closing) {
          this.#feed = this.#rt.engine.consume(this.stream, this.consumer, this, { limit: this.#settings.prefetch });
        }
        return;
      } catch (err) {
        const code = (err as WindshiftError).code;
        if (code === ErrorCode.NotFound || code === ErrorCode.PermissionDenied) {
          // The stream is gone too, or the user may not create consumers: trying again cannot help.
          this.#failure = err as WindshiftError;
          void this.#shutdown({ wait: false });
          return;
        }
        this.#rt.logger.warn("recreating the consumer failed; trying again", { error: String(err), delayMs });
        await sleep(this.#rt.clock, delayMs);
        delayMs = Math.min(delayMs * 2, 5_000);
      }
    }
  }

  #shutdown(how: { wait: boolean; unstarted?: readonly EventImpl[] }): Promise<WindshiftError | undefined> {
    if (this.#closedWith !== undefined) return this.#closedWith;
    this.#closing = true;
    this.#settings.signal?.removeEventListener("abort", this.#onAbort);
    // Taken back at once, so that the loop and the processor see them settled.
    const released: Delivery[] = [];
    for (const event of how.unstarted ?? []) {
      const delivery = event.takeBack();
      if (delivery !== undefined) released.push(delivery);
    }
    released.push(...this.#queue.drain());
    this.#queue.end(this.#failure);
    const failure = this.#failure;
    this.#changes.notify();
    this.#closedWith = (async () => {
      // Released only after the engine stopped feeding us, or it may hand
      // them to this dead feed; in stream order, so they come back in order.
      await this.#feed?.stop();
      for (const delivery of released) release(delivery);
      if (how.wait) await this.#settler.waitForSettled(this.#settings.closeTimeoutMs);
      this.#settler.stop();
      const unsettled = this.#settler.unsettledEvents();
      if (how.wait) this.#settler.warnGivenBack(unsettled, this.#settings.closeTimeoutMs);
      for (const event of unsettled) {
        if (how.wait) {
          const delivery = event.takeBack();
          if (delivery !== undefined) release(delivery);
        }
        event.endProcessing();
      }
      await this.#feed?.flush();
      this.#status.push(failure === undefined ? { type: "closed" } : { type: "closed", error: failure });
      this.#status.end();
      return failure;
    })();
    void this.#closedWith.then(this.#resolveClosed);
    return this.#closedWith;
  }
}

/**
 * Gives a delivery back for prompt redelivery (nothing for `undefined`: an
 * event settled already). On a closed connection the engine redelivers after
 * the processing timeout anyway.
 */
export function release(delivery: Delivery | undefined): void {
  try {
    delivery?.send("release");
  } catch {
    // Closed: nothing to do.
  }
}
