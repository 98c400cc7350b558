import type { DescMessage, Message, MessageShape, Registry } from "@bufbuild/protobuf";
import type { MsgHdrs, NatsConnection } from "@nats-io/nats-core";
import { type Attributes, type Context, type Span, SpanKind } from "@opentelemetry/api";
import { assertSchema, decode } from "./codec.js";
import { ErrorCode, isWindshiftError, validationError, WindshiftError } from "./errors.js";
import type { Logger } from "./logger.js";
import { describe } from "./names.js";
import { isClosed, toWindshiftError } from "./nats-errors.js";
import type { Requester, RequestFailures } from "./requester.js";
import { type RetryOptions, resolveRetry, withRetry } from "./retry.js";
import { Attr, errorType, failSpan, type Telemetry } from "./telemetry.js";
import type { HeaderMap } from "./trace-context.js";
import * as v from "./validate.js";
import { Headers, parseTime } from "./wire.js";

/** The windshift headers of an event, parsed. */
export interface EventHeaders {
  /** When the event occurred (`WS-Published-Time`); `undefined` when missing or unparseable. */
  readonly occurredAt: Date | undefined;
  /** The idempotency key it was published with (`Nats-Msg-Id`), if any. */
  readonly idempotencyKey: string | undefined;
  /** Reads any header by name (exact match first, then case-insensitive). */
  get(name: string): string | undefined;
}

/** Options for `ack` and `ping`. */
export interface SettleOptions {
  /**
   * How to retry a failed attempt, or `false` for one attempt only.
   * @default the subscription's `retry`
   */
  readonly retry?: RetryOptions | boolean;
  /**
   * How long one attempt waits for the server's confirmation.
   * @default 2_000
   */
  readonly timeoutMs?: number;
  /** Cancels the call; the event stays unsettled unless the server already got it. */
  readonly signal?: AbortSignal;
}

/** How to reject an event. Give at most one of `delayMs`, `permanent` and `decider`. */
export interface RejectOptions extends SettleOptions {
  /** Redeliver no sooner than this many milliseconds from now. */
  readonly delayMs?: number;
  /** Never redeliver this event (JetStream's term). */
  readonly permanent?: boolean;
  /**
   * Decide from the event: a negative result rejects permanently, zero
   * redelivers per the consumer's defaults, a positive result redelivers
   * after that many milliseconds.
   */
  readonly decider?: (event: Event) => number;
}

/**
 * One delivery of an event. Settle it exactly once with {@link Event.ack} or
 * {@link Event.reject}; {@link Event.ping} while working on it for long.
 *
 * @typeParam T - the decoded message type, from the subscription's `schema`.
 */
export interface Event<T extends Message = Message> {
  /** The event's id: its sequence number in the stream. */
  readonly id: number;
  /** The subject it was published to. */
  readonly subject: string;
  /** The stream it is stored in. */
  readonly stream: string;
  /** The consumer it was delivered through. */
  readonly consumer: string;
  /** Which delivery this is, from 1. */
  readonly deliveryAttempt: number;
  /** The full Protobuf type name of the payload (`WS-Data-Type`); `""` when missing. */
  readonly type: string;
  /** The parsed windshift headers. */
  readonly headers: EventHeaders;
  /**
   * The OpenTelemetry context of this event's processing: it holds the
   * `process` span, which continues the producer's trace (or links to it). Run
   * handler work inside it, e.g. `context.with(event.context, handler)`, to
   * make child spans; the span ends when the event is settled.
   */
  readonly context: Context;
  /**
   * The decoded message, typed by the subscription's `schema` or looked up in
   * its `registry` by {@link Event.type}. Decoded on first access. Throws an
   * `INVALID_DATA` error when the payload cannot be decoded or is of another
   * type; reject such events (for example permanently).
   */
  readonly data: T;
  /** The raw Protobuf bytes. */
  readonly payload: Uint8Array;
  /** Whether this process has acked or rejected the event. */
  readonly settled: boolean;
  /** Whether the event's type is `schema`'s. */
  is(schema: DescMessage): boolean;
  /** Decodes the payload as `schema`; `INVALID_DATA` when the type differs or decoding fails. */
  decode<Desc extends DescMessage>(schema: Desc): MessageShape<Desc>;
  /** Marks the event processed. Confirmed by the server unless the subscription says otherwise. */
  ack(options?: SettleOptions): Promise<void>;
  /** Gives the event back: redelivered later, or never with `permanent`. */
  reject(options?: RejectOptions): Promise<void>;
  /** Tells the server the event is still being worked on, restarting its processing timeout. */
  ping(options?: SettleOptions): Promise<void>;
}

/** How the subscription treats settlements; shared by all its events. */
export interface Settler {
  readonly nc: NatsConnection;
  readonly requester: Requester;
  readonly confirm: boolean;
  readonly retry: Required<RetryOptions> | undefined;
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  /** Metric attributes of this subscription (connection, stream, consumer, template). */
  metricAttributes(): Attributes;
  /** Metric attributes of a settlement, cached per operation when it succeeded. */
  settleAttributes(operation: string, errorType: string | undefined): Attributes;
  /** Called once an event is acked or rejected. */
  settled(event: EventImpl): void;
  /** Sends a fire-and-forget ack with the next batch (one socket write for many). */
  queueAck(reply: string): void;
}

/** How the subscription decodes `data`. */
export type Decoder = { schema: DescMessage } | { registry: Registry } | undefined;

export const ACK = new TextEncoder().encode("+ACK");
const NAK = new TextEncoder().encode("-NAK");
const GIVE_BACK = new TextEncoder().encode(`-NAK {"delay":${50 * 1_000_000}}`);
const TERM = new TextEncoder().encode("+TERM");
// JetStream spells "work in progress" +WPI.
export const WIP = new TextEncoder().encode("+WPI");
const DEFAULT_SETTLE_TIMEOUT_MS = 2_000;
const SETTLED: Promise<void> = Promise.resolve();
const DATA_TYPE_KEY = Headers.DataType.toLowerCase();
const PUBLISHED_TIME_KEY = Headers.PublishedTime.toLowerCase();
const MSG_ID_KEY = Headers.MsgId.toLowerCase();

/** The conventions' settle operation names. */
type SettleOperation = "ack" | "nak" | "term" | "progress";
const SETTLE_KNOWN = new Set(["retry", "timeoutMs", "signal"]);
const REJECT_KNOWN = new Set([...SETTLE_KNOWN, "delayMs", "permanent", "decider"]);

enum State {
  Pending = 0,
  Settling = 1,
  Settled = 2,
}

/** Errors thrown by decoding an event, to the event: a processor treats those as the event's fault. */
const dataErrors = new WeakMap<object, EventImpl>();

/** Whether `error` was thrown by decoding `event` (its `data`, or `decode()`). */
export function isDataErrorOf(error: unknown, event: EventImpl): boolean {
  return typeof error === "object" && error !== null && dataErrors.get(error) === event;
}

/** The one {@link Event} implementation; created by the subscription per delivery. */
export class EventImpl<T extends Message = Message> implements Event<T> {
  readonly id: number;
  readonly subject: string;
  readonly stream: string;
  readonly consumer: string;
  readonly deliveryAttempt: number;
  readonly payload: Uint8Array;
  readonly context: Context;
  /** When the server last heard of this event (delivery or ping), `performance.now()`. */
  touchedAt: number;
  /** The headers as delivered, names as sent (for dead letters). */
  readonly rawHeaders: MsgHdrs | undefined;
  readonly #reply: string;
  readonly #raw: HeaderMap;
  readonly #settler: Settler;
  readonly #decoder: Decoder;
  #headers: EventHeaders | undefined;
  #decoded = false;
  #data: unknown;
  #dataError: unknown;
  #state = State.Pending;
  readonly #span: Span | undefined;
  readonly #handedOutAt: number;
  #spanEnded = false;
  /** Whether the subscription or processor gave the event back unsettled (closing). */
  givenBack = false;
  /** How the event is being or was settled, from the moment the settlement starts. */
  settlement: "ack" | "nak" | "term" | undefined;

  constructor(
    init: {
      id: number;
      subject: string;
      stream: string;
      consumer: string;
      deliveryAttempt: number;
      payload: Uint8Array;
      headers: HeaderMap;
      rawHeaders: MsgHdrs | undefined;
      reply: string;
      context: Context;
      span: Span | undefined;
      receivedAt: number;
    },
    settler: Settler,
    decoder: Decoder,
  ) {
    this.id = init.id;
    this.subject = init.subject;
    this.stream = init.stream;
    this.consumer = init.consumer;
    this.deliveryAttempt = init.deliveryAttempt;
    this.payload = init.payload;
    this.context = init.context;
    this.#span = init.span;
    this.#handedOutAt = settler.telemetry.metering ? performance.now() : 0;
    this.touchedAt = init.receivedAt;
    this.#reply = init.reply;
    this.#raw = init.headers;
    this.rawHeaders = init.rawHeaders;
    this.#settler = settler;
    this.#decoder = decoder;
  }

  get type(): string {
    return this.#raw.get(DATA_TYPE_KEY) ?? "";
  }

  get headers(): EventHeaders {
    if (this.#headers === undefined) {
      const raw = this.#raw;
      const time = raw.get(PUBLISHED_TIME_KEY);
      this.#headers = Object.freeze({
        occurredAt: time === undefined ? undefined : parseTime(time),
        idempotencyKey: raw.get(MSG_ID_KEY),
        get: (name: string) => raw.get(name.toLowerCase()),
      });
    }
    return this.#headers;
  }

  get settled(): boolean {
    return this.#state === State.Settled;
  }

  get data(): T {
    if (!this.#decoded) {
      this.#decoded = true;
      try {
        this.#data = this.#decodeData();
      } catch (err) {
        this.#dataError = err;
        if (typeof err === "object" && err !== null && isWindshiftError(err, ErrorCode.InvalidData)) {
          dataErrors.set(err, this);
        }
        if (this.#span !== undefined) failSpan(this.#span, err);
      }
    }
    if (this.#dataError !== undefined) throw this.#dataError;
    return this.#data as T;
  }

  #decodeData(): unknown {
    const decoder = this.#decoder;
    if (decoder === undefined) {
      throw new WindshiftError(
        ErrorCode.Validation,
        "event.data needs a `schema` or `registry` on subscribe(); use event.decode(Schema) or event.payload instead",
      );
    }
    if ("schema" in decoder) return this.decode(decoder.schema);
    const type = this.type;
    const schema = type === "" ? undefined : decoder.registry.getMessage(type);
    if (schema === undefined) {
      throw new WindshiftError(
        ErrorCode.InvalidData,
        type === "" ? "the event has no WS-Data-Type header" : `the registry does not know the type "${type}"`,
        { details: { type, id: this.id } },
      );
    }
    return decode(schema, this.payload);
  }

  is(schema: DescMessage): boolean {
    assertSchema("schema", schema);
    return this.type === schema.typeName;
  }

  decode<Desc extends DescMessage>(schema: Desc): MessageShape<Desc> {
    assertSchema("schema", schema);
    try {
      return this.#decodeAs(schema);
    } catch (err) {
      if (typeof err === "object" && err !== null) dataErrors.set(err, this);
      throw err;
    }
  }

  #decodeAs<Desc extends DescMessage>(schema: Desc): MessageShape<Desc> {
    const type = this.type;
    if (type !== schema.typeName) {
      throw new WindshiftError(
        ErrorCode.InvalidData,
        type === ""
          ? `the event has no WS-Data-Type header; expected ${schema.typeName}`
          : `the event is a ${type}, not a ${schema.typeName}`,
        { details: { expected: schema.typeName, actual: type, id: this.id } },
      );
    }
    return decode(schema, this.payload);
  }

  ack(options?: SettleOptions): Promise<void> {
    if (options === undefined && !this.#settler.confirm && this.#span === undefined) return this.#quickAck();
    return this.#settle("ack", ACK, options, SETTLE_KNOWN);
  }

  /**
   * The common fire-and-forget ack without a span: queued for the
   * subscription's next batch of acks and settled at once, without the async
   * machinery a confirmed ack needs.
   */
  #quickAck(): Promise<void> {
    if (this.#state !== State.Pending) return this.#settle("ack", ACK, undefined, SETTLE_KNOWN);
    const settler = this.#settler;
    const t = settler.telemetry;
    if (settler.nc.isClosed()) {
      const failure = new SettleFailures("ack", this.id).closed();
      if (t.metering) t.operationDuration.record(0, settler.settleAttributes("ack", errorType(failure)));
      return Promise.reject(failure);
    }
    settler.queueAck(this.#reply);
    this.#state = State.Settled;
    this.settlement = "ack";
    settler.settled(this);
    if (t.metering) t.operationDuration.record(0, settler.settleAttributes("ack", undefined));
    this.endProcessing();
    return SETTLED;
  }

  reject(options?: RejectOptions): Promise<void> {
    let payload: Uint8Array;
    try {
      payload = this.#rejectPayload(options);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#settle(payload === TERM ? "term" : "nak", payload, options, REJECT_KNOWN);
  }

  async ping(options?: SettleOptions): Promise<void> {
    const { retry, timeoutMs, signal } = this.#settleOptions(options, SETTLE_KNOWN);
    if (this.#state === State.Settled) {
      throw new WindshiftError(
        ErrorCode.AlreadySettled,
        `event ${this.id} is already settled; there is nothing to ping`,
      );
    }
    await this.#send("progress", WIP, retry, timeoutMs, signal);
    this.touchedAt = performance.now();
  }

  /** Sends a fire-and-forget progress ping (auto-ping); never throws. */
  autoPing(now: number): void {
    this.touchedAt = now;
    const span = this.#startSettleSpan("progress");
    try {
      this.#settler.nc.publish(this.#reply, WIP);
    } catch (err) {
      // The connection is closed; redelivery will take care of the event.
      if (span !== undefined) failSpan(span, err);
    }
    span?.end();
  }

  /**
   * Ends the process span (once): on settlement, when the subscription closes
   * with the event unsettled, or when it was given up on.
   */
  endProcessing(): void {
    if (this.#spanEnded) return;
    this.#spanEnded = true;
    this.#span?.end();
    const t = this.#settler.telemetry;
    if (t.metering) {
      t.processDuration.record((performance.now() - this.#handedOutAt) / 1000, this.#settler.metricAttributes());
    }
  }

  #startSettleSpan(operation: SettleOperation): Span | undefined {
    const t = this.#settler.telemetry;
    if (!t.tracing()) return undefined;
    return t.tracer.startSpan(
      `${operation} ${this.subject}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          ...t.connection(),
          [Attr.OperationType]: "settle",
          [Attr.OperationName]: operation,
          [Attr.Destination]: this.subject,
          [Attr.Subscription]: this.consumer,
          [Attr.Stream]: this.stream,
          [Attr.MessageId]: String(this.id),
        },
      },
      this.context,
    );
  }

  /**
   * Gives the event back (a fire-and-forget nak) when its subscription closes
   * with it unsettled; a later ack or reject is `ALREADY_SETTLED`.
   */
  giveBack(): void {
    if (this.#state !== State.Pending) return;
    this.#state = State.Settled;
    this.givenBack = true;
    this.settlement = "nak";
    EventImpl.nakUnhanded(this.#settler.nc, this.#reply);
  }

  /**
   * Takes the event back unsettled (a processor closing before it started
   * the event): marks it settled without sending anything and returns the
   * reply subject to nak, or `undefined` when it was settled already.
   */
  takeBack(): string | undefined {
    if (this.#state !== State.Pending) return undefined;
    this.#state = State.Settled;
    this.givenBack = true;
    this.settlement = "nak";
    this.#settler.settled(this);
    this.endProcessing();
    return this.#reply;
  }

  /** Marks the process span failed (a processor's handler threw). */
  recordFailure(error: unknown): void {
    if (this.#span !== undefined && !this.#spanEnded) failSpan(this.#span, error);
  }

  /** Fire-and-forget progress ping for an event still waiting in a subscription's buffer. */
  static pingUnhanded(nc: NatsConnection, reply: string): void {
    try {
      nc.publish(reply, WIP);
    } catch {
      // The connection is closed: the event is redelivered after its processing timeout.
    }
  }

  /**
   * Fire-and-forget nak used when a subscription gives back events on close.
   * It asks for a 50 ms delay: nats-server 2.9.10 handles a plain nak of the
   * consumer's newest delivery by rewinding the consumer, and a batch of plain
   * naks then came back out of order, one lost and one twice (measured). Naks
   * with a delay come back in the order they were sent.
   */
  static nakUnhanded(nc: NatsConnection, reply: string): void {
    try {
      nc.publish(reply, GIVE_BACK);
    } catch {
      // As above: the server redelivers after the processing timeout.
    }
  }

  #rejectPayload(options: RejectOptions | undefined): Uint8Array {
    const o = v.optionsObject("options", options);
    const delayMs = v.durationMs("delayMs", o.delayMs);
    const permanent = v.boolean("permanent", o.permanent);
    const decider = o.decider;
    if (decider !== undefined && typeof decider !== "function") {
      throw validationError("decider", `${describe(decider)} is not a function`);
    }
    const given = [delayMs !== undefined, permanent !== undefined, decider !== undefined].filter(Boolean).length;
    if (given > 1) throw validationError("options", "give at most one of delayMs, permanent and decider");
    let delay = delayMs ?? 0;
    if (permanent === true) return TERM;
    if (decider !== undefined) {
      const decided = (decider as (e: Event) => unknown)(this as unknown as Event);
      if (typeof decided !== "number" || Number.isNaN(decided)) {
        throw validationError("decider", `returned ${describe(decided)}, not a number of milliseconds`);
      }
      if (decided < 0) return TERM;
      delay = Math.min(Math.round(decided), v.MAX_DURATION_MS);
    }
    if (delay === 0) return NAK;
    return new TextEncoder().encode(`-NAK ${JSON.stringify({ delay: delay * 1_000_000 })}`);
  }

  #settleOptions(options: SettleOptions | undefined, known: ReadonlySet<string>) {
    if (options === undefined) {
      return { retry: this.#settler.retry, timeoutMs: DEFAULT_SETTLE_TIMEOUT_MS, signal: undefined };
    }
    const o = v.optionsObject("options", options);
    v.rejectUnknown(o, known);
    return {
      retry: o.retry === undefined ? this.#settler.retry : resolveRetry("retry", o.retry, this.#settler.retry),
      timeoutMs: v.durationMs("timeoutMs", o.timeoutMs, 1) ?? DEFAULT_SETTLE_TIMEOUT_MS,
      signal: v.signal("signal", o.signal),
    };
  }

  async #settle(
    what: SettleOperation,
    payload: Uint8Array,
    options: SettleOptions | undefined,
    known: ReadonlySet<string>,
  ): Promise<void> {
    const { retry, timeoutMs, signal } = this.#settleOptions(options, known);
    if (this.#state !== State.Pending) {
      throw new WindshiftError(
        ErrorCode.AlreadySettled,
        `event ${this.id} is already ${this.#state === State.Settling ? "being settled" : "settled"}`,
        { details: { id: this.id } },
      );
    }
    this.#state = State.Settling;
    this.settlement = what === "progress" ? undefined : what;
    try {
      await this.#send(what, payload, retry, timeoutMs, signal);
    } catch (err) {
      this.#state = State.Pending;
      this.settlement = undefined;
      throw err;
    }
    this.#state = State.Settled;
    this.#settler.settled(this);
    this.endProcessing();
  }

  async #send(
    operation: SettleOperation,
    payload: Uint8Array,
    retry: Required<RetryOptions> | undefined,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const settler = this.#settler;
    const span = this.#startSettleSpan(operation);
    const started = performance.now();
    let failure: unknown;
    try {
      if (settler.confirm) {
        const failures = new SettleFailures(operation, this.id);
        const reply = this.#reply;
        // Each attempt publishes to the reply subject itself: nats.js's own ack
        // helpers refuse to send twice, which would turn a retry into a no-op.
        await withRetry(
          () => settler.requester.request(reply, payload, undefined, timeoutMs, signal, failures),
          retry,
          {
            signal,
            shouldRetry: (err) => !(err instanceof WindshiftError && err.code === ErrorCode.Closed),
            onRetry: (err, n) => {
              span?.addEvent("retry", { attempt: n, [Attr.ErrorType]: errorType(err) });
              settler.logger.debug(`${operation} failed, retrying`, { id: this.id, attempt: n, error: String(err) });
            },
          },
        );
      } else {
        // Fire-and-forget: publishing fails only on a closed connection, which
        // no retry would mend.
        try {
          settler.nc.publish(this.#reply, payload);
        } catch (err) {
          throw isClosed(err)
            ? new SettleFailures(operation, this.id).closed()
            : toWindshiftError(err, `${operation} of event ${this.id}`);
        }
      }
    } catch (err) {
      failure = err;
      if (span !== undefined) failSpan(span, err);
      throw err;
    } finally {
      span?.end();
      if (settler.telemetry.metering) {
        settler.telemetry.operationDuration.record(
          (performance.now() - started) / 1000,
          settler.settleAttributes(operation, failure === undefined ? undefined : errorType(failure)),
        );
      }
    }
  }
}

/** How a settlement's transport failures are described. */
class SettleFailures implements RequestFailures {
  readonly #operation: SettleOperation;
  readonly #id: number;
  constructor(operation: SettleOperation, id: number) {
    this.#operation = operation;
    this.#id = id;
  }
  noResponders(): WindshiftError {
    return new WindshiftError(
      ErrorCode.Server,
      `${this.#operation} of event ${this.#id}: nobody took it (is the consumer gone?)`,
      { details: { id: this.#id } },
    );
  }
  timeout(): WindshiftError {
    return new WindshiftError(
      ErrorCode.Timeout,
      `${this.#operation} of event ${this.#id}: the server did not confirm in time`,
      { details: { id: this.#id } },
    );
  }
  closed(): WindshiftError {
    return new WindshiftError(ErrorCode.Closed, `${this.#operation} of event ${this.#id}: the connection is closed`, {
      details: { id: this.#id },
    });
  }
}
