import type { DescMessage, Message, Registry } from "@bufbuild/protobuf";
import { type ConsumerConfig, type ConsumerInfo, DeliverPolicy } from "@nats-io/jetstream";
import type { Msg } from "@nats-io/nats-core";
import type { Attributes, Span } from "@opentelemetry/api";
import { abortError, raceAbort } from "./abort.js";
import { assertRegistry, assertSchema } from "./codec.js";
import { ErrorCode, validationError, type WindshiftError } from "./errors.js";
import { ACK, type Decoder, type Event, EventImpl, type Settler } from "./event.js";
import type { Logger } from "./logger.js";
import { assertName } from "./names.js";
import { toWindshiftError } from "./nats-errors.js";
import { type DeliveryInfo, Puller, type PullTarget, parseDelivery } from "./puller.js";
import type { Requester } from "./requester.js";
import { type RetryOptions, resolveRetry, SETTLE_RETRY } from "./retry.js";
import { type Runtime, toMs } from "./runtime.js";
import { StatusChannel, type SubscriptionStatus } from "./status.js";
import { Attr, startProcessSpan, type Telemetry } from "./telemetry.js";
import { extractTraceContext, toHeaderMap } from "./trace-context.js";
import * as v from "./validate.js";
import { Headers } from "./wire.js";

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
   * server or waiting in the subscription's buffer. Their processing timeout
   * runs while they wait (auto-ping keeps them alive; without it, keep this
   * small for slow handlers). Closing gives back what was never handed out,
   * for redelivery after 50 ms.
   * @default 50
   */
  readonly maxPendingEvents?: number;
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
   * Wait for the server to confirm each ack, reject and ping (and retry until
   * it does). `false` sends them without waiting: faster, but a settlement
   * lost on the way shows up only as a redelivery.
   * @default true
   */
  readonly confirmAcks?: boolean;
  /**
   * How ack, reject and ping retry, unless a call says otherwise; `false` for
   * a single attempt.
   * @default exponential from 10 ms, doubling, giving up after 5 s in total
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
   * before it gives them back (naks them). Leaving a `for await` loop does not
   * wait.
   * @default 5_000
   */
  readonly closeTimeoutMs?: number;
  /** Aborting ends the iteration cleanly, as `close()` does. */
  readonly signal?: AbortSignal;
}

/**
 * A stream of events from one consumer. Iterate it with `for await`; leaving
 * the loop (break, return, throw) closes it.
 *
 * @typeParam T - the decoded message type, from `schema`.
 */
export interface Subscription<T extends Message = Message> extends AsyncIterable<Event<T>>, AsyncDisposable {
  /** The stream read from. */
  readonly stream: string;
  /** The consumer read through. */
  readonly consumer: string;
  /** The consumer's processing timeout (ack wait), in milliseconds. */
  readonly processingTimeoutMs: number;
  /** Resolves once the subscription is closed, however that happened. Never rejects. */
  readonly closed: Promise<void>;
  /**
   * Stops pulling, gives back events that were received but not handed out
   * (they are redelivered at once), and ends the iteration. Then it waits up to
   * `closeTimeoutMs` for events already handed out to be settled, and gives
   * back those that are not. Leaves no timers behind. Safe to call more than
   * once.
   */
  close(): Promise<void>;
  /**
   * What happens to the subscription: reconnects, missed heartbeats, a
   * deleted or recreated consumer, closing. Each call returns a new iterator
   * that ends when the subscription closes.
   */
  status(): AsyncIterableIterator<SubscriptionStatus>;
}

const DEFAULT_PULL = 50;
const PULL_EXPIRES_MS = 5_000;
const FLUSH_ON_CLOSE_MS = 1_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;
const DATA_TYPE_KEY = Headers.DataType.toLowerCase();
const KNOWN = new Set([
  "schema",
  "registry",
  "maxPendingEvents",
  "autoPing",
  "confirmAcks",
  "retry",
  "onConsumerDeleted",
  "closeTimeoutMs",
  "signal",
]);

/** Validated subscribe options. */
interface Resolved {
  decoder: Decoder;
  pull: number;
  autoPing: boolean;
  confirm: boolean;
  retry: Required<RetryOptions> | undefined;
  recreate: boolean;
  closeTimeoutMs: number;
  signal: AbortSignal | undefined;
}

function resolveOptions(input: unknown): Resolved {
  const o = v.optionsObject("options", input);
  v.rejectUnknown(o, KNOWN);
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
  return {
    decoder,
    pull: v.integer("maxPendingEvents", o.maxPendingEvents, 1, 10_000) ?? DEFAULT_PULL,
    autoPing: v.boolean("autoPing", o.autoPing) ?? true,
    confirm: v.boolean("confirmAcks", o.confirmAcks) ?? true,
    retry: resolveRetry("retry", o.retry, SETTLE_RETRY),
    recreate: v.oneOf("onConsumerDeleted", o.onConsumerDeleted, ["error", "recreate"] as const) === "recreate",
    closeTimeoutMs: v.durationMs("closeTimeoutMs", o.closeTimeoutMs) ?? DEFAULT_CLOSE_TIMEOUT_MS,
    signal: v.signal("signal", o.signal),
  };
}

/** Opens a subscription; see `Events.subscribe`. */
export async function subscribe<T extends Message>(
  rt: Runtime,
  stream: string,
  consumer: string,
  options?: SubscribeOptions,
): Promise<SubscriptionImpl<T>> {
  assertName("stream", stream);
  assertName("consumer", consumer);
  const opts = resolveOptions(options);
  const { signal } = opts;
  if (signal?.aborted) throw abortError(signal);
  const sub = new SubscriptionImpl<T>(rt, stream, consumer, opts);
  let info: ConsumerInfo;
  try {
    const jsm = await rt.jsm();
    info = await raceAbort(jsm.consumers.info(stream, consumer), signal);
  } catch (err) {
    throw toWindshiftError(err, `subscribe("${stream}", "${consumer}")`);
  }
  const filters = info.config.filter_subjects ?? (info.config.filter_subject ? [info.config.filter_subject] : []);
  // A subject can be anything; the consumer's single filter (or else the
  // stream) is the low-cardinality stand-in the conventions ask metrics for.
  sub.template = filters.length === 1 ? (filters[0] as string) : stream;
  sub.start(info);
  return sub;
}

interface Buffered {
  msg: Msg;
  info: DeliveryInfo;
  receivedAt: number;
}

/** The one {@link Subscription} implementation; processors use its internals. */
export class SubscriptionImpl<T extends Message> implements Subscription<T>, Settler, PullTarget {
  readonly stream: string;
  readonly consumer: string;
  processingTimeoutMs = 0;
  /** The consumer's limit on deliveries per event; `Infinity` when it has none. */
  maxDeliver = Number.POSITIVE_INFINITY;
  readonly closed: Promise<void>;
  readonly nc: Runtime["nc"];
  readonly requester: Requester;
  readonly confirm: boolean;
  readonly retry: Required<RetryOptions> | undefined;
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  template: string;
  #metricConnection: Attributes | undefined;
  #metricAttributes: Attributes = {};
  #settleBase: Attributes | undefined;
  readonly #settleAttributes = new Map<string, Attributes>();
  readonly #rt: Runtime;
  readonly #opts: Resolved;
  #puller: Puller | undefined;
  #buffer: Buffered[] = [];
  #head = 0;
  #wake: (() => void) | undefined;
  #wakeup: Promise<void> | undefined;
  #closing = false;
  #failure: WindshiftError | undefined;
  /** Why the subscription ended, kept for the `closed` status after the loop has thrown it. */
  #endError: WindshiftError | undefined;
  #resolveClosed!: () => void;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Events handed out and not settled, by id; a redelivery replaces its stale predecessor. */
  readonly #inFlight = new Map<number, EventImpl<T>>();
  readonly #status = new StatusChannel();
  #config: ConsumerConfig | undefined;
  /** The id the consumer would resume from if it had to be recreated. */
  #resumeFrom = 1;
  #drained: (() => void) | undefined;
  /** Fire-and-forget acks waiting for the next batch. */
  #acks: string[] = [];
  /** Publishes the queued acks; nats.js then writes them to the socket in one go. */
  readonly #flushAcks = (): void => {
    const acks = this.#acks;
    if (acks.length === 0) return;
    this.#acks = [];
    for (const reply of acks) {
      try {
        this.nc.publish(reply, ACK);
      } catch {
        // The connection closed: these events are redelivered after their processing timeout.
      }
    }
  };
  readonly #onAbort = (): void => {
    void this.close();
  };

  constructor(rt: Runtime, stream: string, consumer: string, opts: Resolved) {
    this.#rt = rt;
    this.nc = rt.nc;
    this.requester = rt.settleRequester();
    this.logger = rt.logger;
    this.telemetry = rt.telemetry;
    this.template = stream;
    this.stream = stream;
    this.consumer = consumer;
    this.confirm = opts.confirm;
    this.retry = opts.retry;
    this.#opts = opts;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  start(info: ConsumerInfo): void {
    const processingTimeoutMs = toMs(info.config.ack_wait ?? 30_000_000_000);
    this.processingTimeoutMs = processingTimeoutMs;
    const maxDeliver = info.config.max_deliver ?? -1;
    this.maxDeliver = maxDeliver > 0 ? maxDeliver : Number.POSITIVE_INFINITY;
    this.#config = info.config;
    this.#resumeFrom = (info.ack_floor?.stream_seq ?? 0) + 1;
    const { signal } = this.#opts;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    if (signal?.aborted) this.#onAbort();
    if (this.#closing) return;
    const tick = Math.max(10, Math.floor(processingTimeoutMs / 4));
    this.#timer = setInterval(() => this.#tick(tick), tick);
    this.#timer.unref?.();
    this.#startPuller();
  }

  #startPuller(): void {
    this.#puller = new Puller(
      this.nc,
      { stream: this.stream, consumer: this.consumer, limit: this.#opts.pull, expiresMs: PULL_EXPIRES_MS },
      this,
      this.logger,
    );
    this.#puller.start();
  }

  /** Called by the puller for every delivered message. */
  deliver(msg: Msg): void {
    const info = msg.reply === undefined ? undefined : parseDelivery(msg.reply);
    if (info === undefined) {
      this.logger.warn("ignoring a message that is not a JetStream delivery", { subject: msg.subject });
      return;
    }
    if (this.#closing) {
      EventImpl.nakUnhanded(this.nc, msg.reply as string);
      return;
    }
    this.#buffer.push({ msg, info, receivedAt: performance.now() });
    this.#signal();
  }

  buffered(): number {
    return this.#buffer.length - this.#head;
  }

  fail(err: WindshiftError): void {
    if (this.#closing) return;
    if (err.code === ErrorCode.NotFound) this.#status.push({ type: "consumer-deleted" });
    if (err.code === ErrorCode.NotFound && this.#opts.recreate && this.#config?.durable_name !== undefined) {
      void this.#recreate(this.#config);
      return;
    }
    this.logger.error("subscription failed", { stream: this.stream, consumer: this.consumer, error: err.message });
    this.#failure = err;
    this.#endError = err;
    void this.#shutdown(false);
  }

  status(): AsyncIterableIterator<SubscriptionStatus> {
    return this.#status.iterate();
  }

  report(status: SubscriptionStatus): void {
    this.#status.push(status);
  }

  /** Creates the durable consumer again where this subscription left off, and pulls from it. */
  async #recreate(config: ConsumerConfig): Promise<void> {
    this.#puller?.stop();
    this.#puller = undefined;
    // What was buffered came from the old consumer: the new one delivers it again.
    let from = this.#resumeFrom;
    for (let i = this.#head; i < this.#buffer.length; i++) {
      from = Math.min(from, (this.#buffer[i] as Buffered).info.streamSequence);
    }
    for (const id of this.#inFlight.keys()) from = Math.min(from, id);
    this.#buffer = [];
    this.#head = 0;
    const { opt_start_time: _, ...rest } = config;
    const fresh: Partial<ConsumerConfig> = {
      ...rest,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from,
    };
    this.logger.warn("consumer deleted; recreating it", { stream: this.stream, consumer: this.consumer, from });
    let delay = 100;
    while (!this.#closing) {
      try {
        const jsm = await this.#rt.jsm();
        await jsm.consumers.add(this.stream, fresh);
        this.#status.push({ type: "consumer-recreated", fromId: from });
        if (!this.#closing) this.#startPuller();
        return;
      } catch (err) {
        if (err instanceof Error && err.name === "StreamNotFoundError") {
          this.#failure = toWindshiftError(err, `recreating consumer "${this.stream}"/"${this.consumer}"`);
          this.#endError = this.#failure;
          void this.#shutdown(false);
          return;
        }
        this.logger.warn("recreating the consumer failed; trying again", { error: String(err), delayMs: delay });
        await new Promise((resolve) => setTimeout(resolve, delay).unref?.());
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }

  ended(): void {
    void this.close();
  }

  async exists(): Promise<boolean> {
    const jsm = await this.#rt.jsm();
    try {
      await jsm.consumers.info(this.stream, this.consumer);
      return true;
    } catch (err) {
      if (err instanceof Error && (err.name === "ConsumerNotFoundError" || err.name === "StreamNotFoundError")) {
        return false;
      }
      throw err;
    }
  }

  queueAck(reply: string): void {
    this.#acks.push(reply);
    // One batch per turn of the event loop: acking in a loop otherwise costs a
    // socket write per event.
    if (this.#acks.length === 1) setImmediate(this.#flushAcks);
  }

  settled(event: EventImpl): void {
    if (this.#inFlight.get(event.id) === event) this.#inFlight.delete(event.id);
    if (this.#inFlight.size === 0) this.#drained?.();
  }

  settleAttributes(operation: string, errorType: string | undefined): Attributes {
    const base = this.metricAttributes();
    if (errorType !== undefined) {
      return { ...base, [Attr.OperationType]: "settle", [Attr.OperationName]: operation, [Attr.ErrorType]: errorType };
    }
    if (this.#settleBase !== base) {
      this.#settleBase = base;
      this.#settleAttributes.clear();
    }
    let attrs = this.#settleAttributes.get(operation);
    if (attrs === undefined) {
      attrs = Object.freeze({ ...base, [Attr.OperationType]: "settle", [Attr.OperationName]: operation });
      this.#settleAttributes.set(operation, attrs);
    }
    return attrs;
  }

  metricAttributes(): Attributes {
    const connection = this.telemetry.connection();
    if (connection !== this.#metricConnection) {
      this.#metricConnection = connection;
      this.#metricAttributes = Object.freeze({
        ...connection,
        [Attr.OperationType]: "process",
        [Attr.OperationName]: "process",
        [Attr.Subscription]: this.consumer,
        [Attr.Stream]: this.stream,
        [Attr.DestinationTemplate]: this.template,
      });
    }
    return this.#metricAttributes;
  }

  [Symbol.asyncIterator](): AsyncIterator<Event<T>> {
    return {
      next: () => this.#next(),
      return: async () => {
        await this.#shutdown(false);
        return { done: true, value: undefined };
      },
    };
  }

  async #next(): Promise<IteratorResult<Event<T>>> {
    for (;;) {
      if (this.#head < this.#buffer.length) {
        const item = this.#buffer[this.#head] as Buffered;
        this.#buffer[this.#head++] = undefined as unknown as Buffered;
        if (this.#head === this.#buffer.length) {
          this.#buffer = [];
          this.#head = 0;
        }
        this.#puller?.pull();
        return { done: false, value: this.#toEvent(item) };
      }
      if (this.#failure !== undefined) {
        const failure = this.#failure;
        this.#failure = undefined;
        throw failure;
      }
      if (this.#closing) return { done: true, value: undefined };
      this.#wakeup ??= new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      await this.#wakeup;
    }
  }

  #toEvent({ msg, info, receivedAt }: Buffered): EventImpl<T> {
    const t = this.telemetry;
    const headers = toHeaderMap(msg.headers);
    const producer = extractTraceContext(headers);
    let span: Span | undefined;
    let context = producer;
    if (t.tracing()) {
      const attributes: Attributes = {
        ...t.connection(),
        [Attr.OperationType]: "process",
        [Attr.OperationName]: "process",
        [Attr.Destination]: msg.subject,
        [Attr.Subscription]: info.consumer,
        [Attr.Stream]: info.stream,
        [Attr.MessageId]: String(info.streamSequence),
        [Attr.DeliveryAttempt]: info.deliveryCount,
      };
      const type = headers.get(DATA_TYPE_KEY);
      if (type) attributes[Attr.DataType] = type;
      if (t.recordBodySize) attributes[Attr.BodySize] = msg.data.length;
      ({ span, context } = startProcessSpan(t, producer, attributes, msg.subject));
    }
    const event = new EventImpl<T>(
      {
        id: info.streamSequence,
        subject: msg.subject,
        stream: info.stream,
        consumer: info.consumer,
        deliveryAttempt: info.deliveryCount,
        payload: msg.data,
        headers,
        rawHeaders: msg.headers,
        reply: msg.reply as string,
        context,
        span,
        receivedAt,
      },
      this,
      this.#opts.decoder,
    );
    if (t.metering) t.consumed.add(1, this.metricAttributes());
    this.#inFlight.get(event.id)?.endProcessing();
    this.#inFlight.set(event.id, event);
    if (event.id >= this.#resumeFrom) this.#resumeFrom = event.id + 1;
    return event;
  }

  #signal(): void {
    const wake = this.#wake;
    if (wake === undefined) return;
    this.#wake = undefined;
    this.#wakeup = undefined;
    wake();
  }

  /**
   * One timer for every handed-out event: pings those that need it, or, without
   * auto-ping, lets go of those the server has redelivered by now.
   */
  #tick(tick: number): void {
    const now = performance.now();
    const autoPing = this.#opts.autoPing;
    if (autoPing) {
      // Events waiting in the buffer too: their processing timeout runs from
      // delivery, and the server would hand them to another subscriber.
      for (let i = this.#head; i < this.#buffer.length; i++) {
        const item = this.#buffer[i] as Buffered;
        if (now - item.receivedAt < tick) continue;
        item.receivedAt = now;
        EventImpl.pingUnhanded(this.nc, item.msg.reply as string);
      }
    }
    for (const event of this.#inFlight.values()) {
      if (autoPing) {
        if (now - event.touchedAt >= tick) event.autoPing(now);
      } else if (now - event.touchedAt > this.processingTimeoutMs) {
        // The server redelivers it by now; this delivery's processing is over.
        event.endProcessing();
      }
    }
  }

  close(): Promise<void> {
    return this.#shutdown(true);
  }

  /**
   * Closes as `close()` does, and gives back `unstarted` (handed out, but a
   * processor never started them) together with the buffered events, so the
   * server redelivers them all in stream order.
   */
  closeGivingBack(unstarted: readonly EventImpl<T>[]): Promise<void> {
    return this.#shutdown(true, unstarted);
  }

  #shutdown(waitForHandedOut: boolean, unstarted: readonly EventImpl<T>[] = []): Promise<void> {
    if (this.#closing) return this.closed;
    this.#closing = true;
    this.#opts.signal?.removeEventListener("abort", this.#onAbort);
    this.#flushAcks();
    this.#puller?.stop();
    // Give back what was received but never handed out, so it is redelivered now
    // rather than after the processing timeout. The naks go out only after the
    // server has seen the unsubscribe, or it may hand them to our dead pull.
    const unhanded: string[] = [];
    for (const event of unstarted) {
      const reply = event.takeBack();
      if (reply !== undefined) unhanded.push(reply);
    }
    for (let i = this.#head; i < this.#buffer.length; i++) unhanded.push(this.#buffer[i]?.msg.reply as string);
    this.#buffer = [];
    this.#head = 0;
    this.#signal();
    void (async () => {
      await flushWithin(this.nc, FLUSH_ON_CLOSE_MS);
      // In stream order, each with a short delay (see EventImpl.nakUnhanded).
      for (const reply of unhanded) EventImpl.nakUnhanded(this.nc, reply);
      if (waitForHandedOut) await this.#drain();
      if (this.#timer !== undefined) clearInterval(this.#timer);
      this.#timer = undefined;
      for (const event of this.#inFlight.values()) {
        if (waitForHandedOut) event.giveBack();
        event.endProcessing();
      }
      this.#inFlight.clear();
      await flushWithin(this.nc, FLUSH_ON_CLOSE_MS);
      const failure = this.#endError;
      this.#status.push(failure === undefined ? { type: "closed" } : { type: "closed", error: failure });
      this.#status.end();
    })().then(this.#resolveClosed);
    return this.closed;
  }

  /** Waits until every handed-out event is settled, or `closeTimeoutMs` passed. */
  async #drain(): Promise<void> {
    if (this.#inFlight.size === 0 || this.nc.isClosed()) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#drained = resolve;
      timer = setTimeout(resolve, this.#opts.closeTimeoutMs);
    });
    clearTimeout(timer);
    this.#drained = undefined;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function flushWithin(nc: Runtime["nc"], ms: number): Promise<void> {
  if (nc.isClosed()) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    nc.flush().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
