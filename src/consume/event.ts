import type { DescMessage, Message, MessageShape } from "@bufbuild/protobuf";
import type { Context } from "@opentelemetry/api";
import type { CloudEventAttributes } from "../cloudevents/attributes.js";
import type { RetryOptions } from "../internal/retry.js";
import type { Violation } from "../validation/rules.js";

/** The windshift headers of an event, parsed. */
export interface EventHeaders {
  /**
   * When the event occurred (`WS-Published-Time`, or the CloudEvent's `time`
   * when the event has no `WS-*` headers); `undefined` when missing or
   * unparseable.
   */
  readonly occurredAt: Date | undefined;
  /**
   * The idempotency key it was published with (`Nats-Msg-Id`, or the
   * CloudEvent's `id` when the event has neither it nor `WS-*` headers), if any.
   */
  readonly idempotencyKey: string | undefined;
  /**
   * The event's CloudEvents attributes, from `ce-*` headers (binary mode) or
   * its JSON envelope (structured mode); `undefined` when it is not a
   * CloudEvent.
   */
  readonly cloudEvent: CloudEventAttributes | undefined;
  /** Reads any header by name, case-insensitively (the first value when repeated). */
  get(name: string): string | undefined;
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
  /**
   * The full Protobuf type name of the payload (`WS-Data-Type`, else the
   * CloudEvent's `type`); `""` when missing.
   */
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
  /**
   * The raw Protobuf bytes: the message's payload as stored. For a
   * structured-mode CloudEvent that is its JSON envelope; `data` and
   * `decode` read the data inside it (`data_base64` as Protobuf binary,
   * JSON `data` with `fromJson`).
   */
  readonly payload: Uint8Array;
  /** Whether this process has acked or rejected the event. */
  readonly settled: boolean;
  /** Whether the event's type is `schema`'s. */
  is(schema: DescMessage): boolean;
  /** Decodes the payload as `schema`; `INVALID_DATA` when the type differs or decoding fails. */
  decode<Desc extends DescMessage>(schema: Desc): MessageShape<Desc>;
  /**
   * Checks {@link Event.data} against its schema's `buf.validate` rules and
   * resolves with the rules it breaks (empty when none). Rejects with
   * `INVALID_DATA` when the payload cannot be decoded, and with `VALIDATION`
   * when `@bufbuild/protovalidate` is not installed or the rules cannot be
   * evaluated. A processor does this for you with `validate: true`.
   */
  validate(): Promise<readonly Violation[]>;
  /** Marks the event processed. Confirmed by the engine unless the subscription says otherwise. */
  ack(options?: SettleOptions): Promise<void>;
  /** Gives the event back: redelivered later, or never with `permanent`. */
  reject(options?: RejectOptions): Promise<void>;
  /** Tells the engine the event is still being worked on, restarting its processing timeout. */
  ping(options?: SettleOptions): Promise<void>;
}

/** Options for `ack` and `ping`. */
export interface SettleOptions {
  /**
   * How to retry a failed attempt, or `false` for one attempt only.
   * @default the subscription's `retry`
   */
  readonly retry?: RetryOptions | boolean;
  /**
   * How long one attempt waits for the engine's confirmation.
   * @default 2_000
   */
  readonly timeoutMs?: number;
  /** Cancels the call; the event stays unsettled unless the engine already got it. */
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
