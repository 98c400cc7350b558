import type { DescMessage, Message, MessageShape } from "@bufbuild/protobuf";
import type { Context, Span } from "@opentelemetry/api";
import type { Delivery, SettleKind } from "../engines/engine.js";
import { ErrorCode, WindshiftError } from "../errors.js";
import { assertSchema } from "../internal/codec.js";
import { failSpan } from "../telemetry/spans.js";
import { loadRules, type RuleCheck, type Violation, violationsOf } from "../validation/rules.js";
import type { Event, EventHeaders, RejectOptions, SettleOptions } from "./event.js";
import { decodeAs, decodeWith, type EncodedEvent, type EventView, eventHeaders, readEvent } from "./event-data.js";
import type { Decoder } from "./options.js";
import { resolveRejectOptions, resolveSettleOptions, type SettleSettings } from "./settle-options.js";
import type { Settler } from "./settler.js";

/** How this process settled an event (or is settling it): `release` is a give-back on close. */
export type Outcome = "ack" | "nak" | "term" | "release";

enum Phase {
  Pending = 0,
  Settling = 1,
  Settled = 2,
}

const SETTLED: Promise<void> = Promise.resolve();

/** The one {@link Event} implementation: a delivery, its processing span, and its settlement state. */
export class EventImpl<T extends Message = Message> implements Event<T> {
  readonly delivery: Delivery;
  readonly context: Context;
  /** The settler's tick in which the engine last heard of this event (delivery or ping). */
  touchedTick: number;
  /** When the subscription received it, on the engine's clock (its processing timeout runs from then). */
  readonly receivedAt: number;
  /** Whether `ping()` was called on it: someone is working on it. */
  pinged = false;
  /** When it was handed out, `performance.now()`, for the processing duration (0 when not metering). */
  readonly handedOutAt: number;
  readonly #span: Span | undefined;
  readonly #settler: Settler;
  readonly #decoder: Decoder;
  #headers: EventHeaders | undefined;
  #view: EventView | undefined;
  #decoded = false;
  #data: unknown;
  #dataError: unknown;
  /** The last failure of `decode()`: the event's own fault, like `#dataError`. */
  #decodeError: unknown;
  /** The `INVALID_MESSAGE` error of `checkRules`: the event's own fault too. */
  #invalid: unknown;
  #phase = Phase.Pending;
  #outcome: Outcome | undefined;
  #spanEnded = false;

  constructor(
    delivery: Delivery,
    settler: Settler,
    decoder: Decoder,
    trace: { context: Context; span: Span | undefined },
  ) {
    this.delivery = delivery;
    this.context = trace.context;
    this.#span = trace.span;
    this.#settler = settler;
    this.#decoder = decoder;
    this.touchedTick = settler.ticks;
    this.receivedAt = settler.receivedAt(delivery);
    this.handedOutAt = settler.metering ? performance.now() : 0;
  }

  get id(): number {
    return this.delivery.id;
  }
  get subject(): string {
    return this.delivery.subject;
  }
  get stream(): string {
    return this.delivery.stream;
  }
  get consumer(): string {
    return this.delivery.consumer;
  }
  get deliveryAttempt(): number {
    return this.delivery.deliveryAttempt;
  }
  get payload(): Uint8Array {
    return this.delivery.payload;
  }

  get type(): string {
    return this.#read().type;
  }

  get headers(): EventHeaders {
    this.#headers ??= eventHeaders(this.delivery.headers, this.#read());
    return this.#headers;
  }

  #read(): EventView {
    this.#view ??= readEvent(this.delivery.headers, this.delivery.payload);
    return this.#view;
  }

  get settled(): boolean {
    return this.#phase === Phase.Settled;
  }

  /** How the event was or is being settled; `undefined` while nobody settles it. */
  get outcome(): Outcome | undefined {
    return this.#outcome;
  }

  get data(): T {
    if (!this.#decoded) {
      this.#decoded = true;
      try {
        this.#data = this.#decodeData();
      } catch (err) {
        this.#dataError = err;
        if (this.#span !== undefined) failSpan(this.#span, err);
      }
    }
    if (this.#dataError !== undefined) throw this.#dataError;
    return this.#data as T;
  }

  /** Whether `error` came from decoding this event's own payload (its `data` or `decode()`). */
  isDataError(error: unknown): boolean {
    if (error === undefined) return false;
    return (
      (error === this.#dataError && !(error instanceof WindshiftError && error.code === ErrorCode.Validation)) ||
      error === this.#decodeError
    );
  }

  /** Whether `error` is this event's own `INVALID_MESSAGE`, from {@link EventImpl.checkRules}. */
  isInvalidError(error: unknown): boolean {
    return error !== undefined && error === this.#invalid;
  }

  async validate(): Promise<readonly Violation[]> {
    const check = await loadRules("validate()");
    try {
      this.checkRules(check);
      return [];
    } catch (err) {
      const violations = violationsOf(err);
      if (violations === undefined) throw err;
      return violations;
    }
  }

  /**
   * Checks `data` against its schema's rules: throws its decoding error, or
   * `INVALID_MESSAGE` (remembered as the event's own fault).
   */
  checkRules(check: RuleCheck): void {
    const data = this.data as Message;
    const schema =
      this.#decoder !== undefined && "schema" in this.#decoder
        ? this.#decoder.schema
        : this.#decoder?.registry.getMessage(data.$typeName);
    if (schema === undefined) throw new WindshiftError(ErrorCode.InvalidData, `no schema for ${data.$typeName}`);
    try {
      check(schema, data);
    } catch (err) {
      if (violationsOf(err) !== undefined) this.#invalid = err;
      throw err;
    }
  }

  #decodeData(): unknown {
    return decodeWith(this.#decoder, this.#encoded(), "subscribe()");
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
      this.#decodeError = err;
      throw err;
    }
  }

  #decodeAs<Desc extends DescMessage>(schema: Desc): MessageShape<Desc> {
    return decodeAs(schema, this.#encoded());
  }

  /** What `data` and `decode` read: a structured CloudEvent's data, else the payload. */
  #encoded(): EncodedEvent {
    const view = this.#read();
    return { type: view.type, payload: view.payload, json: view.json, id: this.id };
  }

  ack(options?: SettleOptions): Promise<void> {
    if (options === undefined && this.#phase === Phase.Pending && this.#settler.immediate(this.delivery)) {
      // The common ack without a span, fire-and-forget or applied in-process:
      // sent (batched) and settled at once, without the machinery a
      // confirmed ack needs.
      try {
        this.#settler.sendNow(this, "ack");
      } catch (err) {
        return Promise.reject(err);
      }
      this.#finish("ack");
      return SETTLED;
    }
    let settings: SettleSettings = this.#settler.defaults;
    if (options !== undefined) {
      try {
        settings = resolveSettleOptions(options, this.#settler.retry);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#settle("ack", 0, settings);
  }

  reject(options?: RejectOptions): Promise<void> {
    let rejection: ReturnType<typeof resolveRejectOptions>;
    try {
      rejection = resolveRejectOptions(options, this.#settler.retry, this);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#settle(rejection.kind, rejection.delayMs, rejection);
  }

  async ping(options?: SettleOptions): Promise<void> {
    const settings =
      options === undefined ? this.#settler.defaults : resolveSettleOptions(options, this.#settler.retry);
    if (this.#phase === Phase.Settled) {
      throw new WindshiftError(
        ErrorCode.AlreadySettled,
        `event ${this.id} is already settled; there is nothing to ping`,
        {
          details: { id: this.id },
        },
      );
    }
    this.pinged = true;
    await this.#settler.settle(this, "progress", 0, settings);
    this.touchedTick = this.#settler.ticks;
  }

  async #settle(
    kind: Exclude<SettleKind, "progress" | "release">,
    delayMs: number,
    settings: SettleSettings,
  ): Promise<void> {
    if (this.#phase !== Phase.Pending) {
      throw new WindshiftError(
        ErrorCode.AlreadySettled,
        `event ${this.id} is already ${this.#phase === Phase.Settling ? "being settled" : "settled"}`,
        { details: { id: this.id } },
      );
    }
    this.#phase = Phase.Settling;
    this.#outcome = kind;
    try {
      await this.#settler.settle(this, kind, delayMs, settings);
    } catch (err) {
      this.#phase = Phase.Pending;
      this.#outcome = undefined;
      throw err;
    }
    this.#finish(kind);
  }

  #finish(outcome: Outcome): void {
    this.#phase = Phase.Settled;
    this.#outcome = outcome;
    this.#settler.untrack(this);
    this.endProcessing();
  }

  /**
   * Takes the event back unsettled (its subscription or processor is closing
   * with it unprocessed): marks it settled, so that a later ack or reject is
   * `ALREADY_SETTLED`, and returns its delivery for the caller to release in
   * order; `undefined` when it was settled already.
   */
  takeBack(): Delivery | undefined {
    if (this.#phase !== Phase.Pending) return undefined;
    this.#finish("release");
    return this.delivery;
  }

  /** Marks the process span failed (a processor's handler threw). */
  recordFailure(error: unknown): void {
    if (this.#span !== undefined && !this.#spanEnded) failSpan(this.#span, error);
  }

  /**
   * Ends the process span (once): on settlement, when the subscription closes
   * with the event unsettled, or when it was given up on.
   */
  endProcessing(): void {
    if (this.#spanEnded) return;
    this.#spanEnded = true;
    this.#span?.end();
    this.#settler.recordProcessing(this.handedOutAt);
  }
}
