import type { DescMessage, Message, Registry } from "@bufbuild/protobuf";
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { Attributes } from "@opentelemetry/api";
import { abortError } from "./abort.js";
import { assertRegistry, assertSchema } from "./codec.js";
import { ErrorCode, validationError, WindshiftError } from "./errors.js";
import { type Decoder, type Event, EventImpl, type Settler } from "./event.js";
import type { Logger } from "./logger.js";
import { assertName } from "./names.js";
import { toWindshiftError } from "./nats-errors.js";
import { type RetryOptions, resolveRetry, SETTLE_RETRY } from "./retry.js";
import { type Runtime, toMs } from "./runtime.js";
import { Attr, startProcessSpan, type Telemetry } from "./telemetry.js";
import { extractTraceContext } from "./trace-context.js";
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
   * How many events to request from the server at a time. Events waiting in
   * this buffer are not yet handed out: closing gives them back at once.
   * @default 50
   */
  readonly maxPendingEvents?: number;
  /**
   * While a handed-out event is neither acked nor rejected, ping it every
   * quarter of the consumer's processing timeout so that slow handlers are not
   * redelivered. Stops when the event is settled or the subscription closes.
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
   * (they are redelivered at once), and ends the iteration. Events already
   * handed out can still be settled. Safe to call more than once.
   */
  close(): Promise<void>;
}

const DEFAULT_PULL = 50;
const PULL_EXPIRES_MS = 5_000;
const FLUSH_ON_CLOSE_MS = 1_000;
const KNOWN = new Set(["schema", "registry", "maxPendingEvents", "autoPing", "confirmAcks", "retry", "signal"]);

/** Validated subscribe options. */
interface Resolved {
  decoder: Decoder;
  pull: number;
  autoPing: boolean;
  confirm: boolean;
  retry: Required<RetryOptions> | undefined;
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
    signal: v.signal("signal", o.signal),
  };
}

/** Opens a subscription; see `Events.subscribe`. */
export async function subscribe<T extends Message>(
  rt: Runtime,
  stream: string,
  consumer: string,
  options?: SubscribeOptions,
): Promise<Subscription<T>> {
  assertName("stream", stream);
  assertName("consumer", consumer);
  const opts = resolveOptions(options);
  const { signal } = opts;
  if (signal?.aborted) throw abortError(signal);
  let processingTimeoutMs: number;
  let messages: ConsumerMessages;
  const sub = new SubscriptionImpl<T>(rt, stream, consumer, opts);
  try {
    const c = await rt.js.consumers.get(stream, consumer);
    const info = await c.info(true);
    processingTimeoutMs = toMs(info.config.ack_wait ?? 30_000_000_000);
    const filters = info.config.filter_subjects ?? (info.config.filter_subject ? [info.config.filter_subject] : []);
    // A subject can be anything; the consumer's single filter (or else the
    // stream) is the low-cardinality stand-in the conventions ask metrics for.
    sub.template = filters.length === 1 ? (filters[0] as string) : stream;
    messages = await c.consume({
      max_messages: opts.pull,
      expires: PULL_EXPIRES_MS,
      abort_on_missing_resource: true,
      callback: (m) => sub.receive(m),
    });
  } catch (err) {
    throw toWindshiftError(err, `subscribe("${stream}", "${consumer}")`);
  }
  sub.start(messages, processingTimeoutMs);
  return sub;
}

interface Buffered {
  msg: JsMsg;
  receivedAt: number;
}

class SubscriptionImpl<T extends Message> implements Subscription<T>, Settler {
  readonly stream: string;
  readonly consumer: string;
  processingTimeoutMs = 0;
  readonly closed: Promise<void>;
  readonly nc: Runtime["nc"];
  readonly confirm: boolean;
  readonly retry: Required<RetryOptions> | undefined;
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  template: string;
  #metricConnection: Attributes | undefined;
  #metricAttributes: Attributes = {};
  readonly #rt: Runtime;
  readonly #opts: Resolved;
  #messages: ConsumerMessages | undefined;
  #buffer: Buffered[] = [];
  #head = 0;
  #wake: (() => void) | undefined;
  #wakeup: Promise<void> | undefined;
  #closing = false;
  #failure: WindshiftError | undefined;
  #resolveClosed!: () => void;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #inFlight = new Set<EventImpl<T>>();
  readonly #onAbort = (): void => {
    void this.close();
  };

  constructor(rt: Runtime, stream: string, consumer: string, opts: Resolved) {
    this.#rt = rt;
    this.nc = rt.nc;
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

  start(messages: ConsumerMessages, processingTimeoutMs: number): void {
    this.#messages = messages;
    this.processingTimeoutMs = processingTimeoutMs;
    const { signal } = this.#opts;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    if (signal?.aborted) this.#onAbort();
    if (!this.#closing) {
      const tick = Math.max(10, Math.floor(processingTimeoutMs / 4));
      this.#timer = setInterval(() => this.#tick(tick), tick);
      this.#timer.unref?.();
    }
    void this.#watch(messages);
  }

  /** Called by nats.js for every delivered message. */
  receive(msg: JsMsg): void {
    if (this.#closing) {
      EventImpl.nakUnhanded(this.nc, replyOf(msg));
      return;
    }
    this.#buffer.push({ msg, receivedAt: performance.now() });
    this.#signal();
  }

  settled(event: EventImpl): void {
    this.#inFlight.delete(event as EventImpl<T>);
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
        await this.close();
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

  #toEvent({ msg, receivedAt }: Buffered): EventImpl<T> {
    const info = msg.info;
    const t = this.telemetry;
    const headers = msg.headers;
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
    const type = headers?.get(Headers.DataType);
    if (type) attributes[Attr.DataType] = type;
    if (t.recordBodySize) attributes[Attr.BodySize] = msg.data.length;
    const { span, context } = startProcessSpan(t, extractTraceContext(headers), attributes, msg.subject);
    const event = new EventImpl<T>(
      {
        id: info.streamSequence,
        subject: msg.subject,
        stream: info.stream,
        consumer: info.consumer,
        deliveryAttempt: info.deliveryCount,
        payload: msg.data,
        headers,
        reply: replyOf(msg),
        context,
        span,
        receivedAt,
      },
      this,
      this.#opts.decoder,
    );
    t.consumed.add(1, this.metricAttributes());
    this.#inFlight.add(event);
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
    for (const event of this.#inFlight) {
      if (event.settled) {
        this.#inFlight.delete(event);
      } else if (autoPing) {
        if (now - event.touchedAt >= tick) event.autoPing(now);
      } else if (now - event.touchedAt > this.processingTimeoutMs) {
        this.#inFlight.delete(event);
        event.endProcessing();
      }
    }
  }

  async #watch(messages: ConsumerMessages): Promise<void> {
    const log = this.#rt.logger;
    void (async () => {
      for await (const s of messages.status()) {
        const fields = { stream: this.stream, consumer: this.consumer, status: s.type };
        if (s.type === "heartbeats_missed" || s.type === "consumer_deleted" || s.type === "consumer_not_found") {
          log.warn("subscription status", fields);
        } else if (s.type !== "next" && s.type !== "heartbeat") {
          log.debug("subscription status", fields);
        }
      }
    })().catch(() => {});
    const result = await messages.closed().catch((err: unknown) => err);
    if (this.#closing) return;
    if (result instanceof Error) {
      log.error("subscription failed", { stream: this.stream, consumer: this.consumer, error: result.message });
      const failure = toWindshiftError(result, `subscription to "${this.stream}"/"${this.consumer}"`);
      this.#failure =
        /not found|deleted/i.test(result.message) && failure.code === ErrorCode.Server
          ? new WindshiftError(ErrorCode.NotFound, failure.message, { cause: result })
          : failure;
    }
    await this.close();
  }

  close(): Promise<void> {
    if (this.#closing) return this.closed;
    this.#closing = true;
    this.#opts.signal?.removeEventListener("abort", this.#onAbort);
    this.#messages?.stop();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const event of this.#inFlight) event.endProcessing();
    this.#inFlight.clear();
    // Give back what was received but never handed out, so it is redelivered now
    // rather than after the processing timeout. The naks go out only after the
    // server has seen the unsubscribe, or it may hand them to our dead pull.
    const unhanded = this.#buffer.slice(this.#head).map((b) => replyOf(b.msg));
    this.#buffer = [];
    this.#head = 0;
    this.#signal();
    void (async () => {
      await flushWithin(this.nc, FLUSH_ON_CLOSE_MS);
      // The newest first: nats-server 2.9 then rewinds the consumer to it
      // instead of queueing it, and the rest are redelivered in stream order.
      const newest = unhanded.pop();
      if (newest !== undefined) unhanded.unshift(newest);
      for (const reply of unhanded) EventImpl.nakUnhanded(this.nc, reply);
      if (unhanded.length > 0) await flushWithin(this.nc, FLUSH_ON_CLOSE_MS);
    })().then(this.#resolveClosed);
    return this.closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function replyOf(msg: JsMsg): string {
  return (msg as unknown as { reply: string }).reply;
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
