import { type Attributes, type Context, type Span, SpanKind } from "@opentelemetry/api";
import type { Delivery, SettleKind } from "../engines/engine.js";
import { ErrorCode, WindshiftError } from "../errors.js";
import { abortError } from "../internal/abort.js";
import { type Clock, every, type Ticker, waitAtMost } from "../internal/clock.js";
import { type Retry, retryAfter } from "../internal/retry.js";
import type { Runtime } from "../runtime.js";
import { Attr, errorType } from "../telemetry/attributes.js";
import { failSpan } from "../telemetry/spans.js";
import { HeldEvents } from "./held-events.js";
import { Listeners } from "./idle.js";
import { type SettleSettings, settleDefaults } from "./settle-options.js";

/** How one subscription's settlements are made. */
export interface SettlerSettings {
  readonly stream: string;
  readonly consumer: string;
  /** The low-cardinality destination for metrics: the consumer's one filter, or the stream. */
  readonly template: string;
  readonly confirmAcks: boolean;
  readonly retry: Retry | undefined;
  readonly autoPing: boolean;
  /** Stop auto-pinging an event held this long since its delivery; `undefined` for never. */
  readonly maxAutoPingMs: number | undefined;
  readonly processingTimeoutMs: number;
}

/** What the settler needs of an event it settles (an `EventImpl`). */
export interface Settleable {
  readonly id: number;
  readonly subject: string;
  readonly stream: string;
  readonly consumer: string;
  /** Its processing context: settle spans are its children. */
  readonly context: Context;
  readonly delivery: Delivery;
  /** The settler's tick in which the engine last heard of it. */
  touchedTick: number;
  /** When the subscription received it, on the engine's clock. */
  readonly receivedAt: number;
  /** Whether its handler pinged it (then it is being worked on, and long holding is no news). */
  readonly pinged: boolean;
  /** Ends its processing span and records its processing time (once). */
  endProcessing(): void;
}

/** The conventions' settle operation names. */
type SettleOperation = "ack" | "nak" | "term" | "progress";

const OPERATION: Readonly<Record<SettleKind, SettleOperation>> = {
  ack: "ack",
  nak: "nak",
  release: "nak",
  term: "term",
  progress: "progress",
};

/**
 * Settles the events of one subscription: owns the events handed out and not
 * yet settled, sends settlements (confirmed and retried, or fire-and-forget),
 * keeps unsettled events alive with auto-ping, and records the settle spans
 * and metrics. Events call into it; it never calls into the subscription.
 */
export class Settler<E extends Settleable = Settleable> {
  readonly clock: Clock;
  readonly retry: Retry | undefined;
  /** Whether metrics go anywhere (see `Telemetry.metering`). */
  readonly metering: boolean;
  /** How an ack or ping without options is sent. */
  readonly defaults: SettleSettings;
  readonly #rt: Runtime;
  readonly #settings: SettlerSettings;
  /** What waits in the subscription's buffer (pinged by auto-ping too). */
  readonly #buffered: () => Iterable<Delivery>;
  /** Events handed out and not settled, by id; a redelivery replaces its stale predecessor. */
  readonly #inFlight = new Map<number, E>();
  /** What is said of events held unsettled for long. */
  readonly #held: HeldEvents;
  /** Told whenever an event is settled or taken back (see `idle()`). */
  readonly changes = new Listeners();
  #ticker: Ticker | undefined;
  /** How many times the timer ticked: events remember the tick they were last touched in. */
  #ticks = 0;
  #drained: (() => void) | undefined;
  #metricConnection: Attributes | undefined;
  #metricAttributes: Attributes = {};
  readonly #settleAttributes = new Map<string, Attributes>();

  constructor(rt: Runtime, settings: SettlerSettings, buffered: () => Iterable<Delivery>) {
    this.#rt = rt;
    this.clock = rt.clock;
    this.metering = rt.telemetry.metering;
    this.retry = settings.retry;
    this.defaults = Object.freeze({
      retry: settings.retry,
      timeoutMs: settleDefaults.timeoutMs as number,
      signal: undefined,
    });
    this.#settings = settings;
    this.#buffered = buffered;
    this.#held = new HeldEvents(rt.logger, settings);
  }

  /** How many handed-out events are unsettled. */
  get unsettled(): number {
    return this.#inFlight.size;
  }

  /** The current tick, for an event just handed out or pinged. */
  get ticks(): number {
    return this.#ticks;
  }

  /**
   * Starts the one timer of the subscription, ticking four times per
   * processing timeout: auto-ping, or letting go of events the engine
   * redelivers by now.
   */
  start(): void {
    const tick = Math.max(10, Math.floor(this.#settings.processingTimeoutMs / 4));
    this.#ticker = every(this.clock, tick, () => this.#tick());
  }

  /** Stops the timer. */
  stop(): void {
    this.#ticker?.stop();
    this.#ticker = undefined;
  }

  /** A delivery arrived in the subscription's buffer: its processing timeout runs from now. */
  received(delivery: Delivery): void {
    delivery.receivedAt = this.clock.now();
  }

  /** When `delivery` arrived (now, for one that never waited in the buffer). */
  receivedAt(delivery: Delivery): number {
    return delivery.receivedAt ?? this.clock.now();
  }

  /** A handed-out event; an older delivery of the same event is over. */
  track(event: E): void {
    this.#inFlight.get(event.id)?.endProcessing();
    this.#inFlight.set(event.id, event);
    if (this.metering) this.#rt.telemetry.consumed.add(1, this.metricAttributes());
  }

  /** A settled (or taken back) event. */
  untrack(event: E): void {
    if (this.#inFlight.get(event.id) === event) this.#inFlight.delete(event.id);
    if (this.#inFlight.size === 0) this.#drained?.();
    this.changes.notify();
  }

  /** The handed-out events not settled yet, oldest first. */
  unsettledEvents(): E[] {
    return [...this.#inFlight.values()];
  }

  /** The oldest event id handed out and not settled, if any. */
  oldestUnsettled(): number | undefined {
    let oldest: number | undefined;
    for (const id of this.#inFlight.keys()) if (oldest === undefined || id < oldest) oldest = id;
    return oldest;
  }

  /**
   * Waits until every handed-out event is settled, or `timeoutMs` passed.
   * Real time, also on a test clock: it waits for the user's code, and a
   * close that waited on a test clock nobody advances would never end.
   */
  async waitForSettled(timeoutMs: number): Promise<void> {
    if (this.#inFlight.size === 0) return;
    await waitAtMost(
      new Promise<void>((resolve) => {
        this.#drained = resolve;
      }),
      timeoutMs,
    );
    this.#drained = undefined;
  }

  /**
   * Whether an ack of `delivery` can go out at once, without a span and
   * without waiting: fire-and-forget, or confirmed by an engine that applies
   * it before `send` returns.
   */
  immediate(delivery: Delivery): boolean {
    return (!this.#settings.confirmAcks || delivery.settlesAtOnce) && !this.#rt.telemetry.tracing();
  }

  /** Sends a settlement fire-and-forget, without a span (see {@link Settler.immediate}). Throws `CLOSED`. */
  sendNow(event: E, kind: SettleKind): void {
    try {
      event.delivery.send(kind);
    } catch (err) {
      if (this.metering) {
        this.#rt.telemetry.operationDuration.record(0, this.settleAttributes(OPERATION[kind], errorType(err)));
      }
      throw err;
    }
    if (this.metering)
      this.#rt.telemetry.operationDuration.record(0, this.settleAttributes(OPERATION[kind], undefined));
  }

  /** Sends a settlement: confirmed and retried, or fire-and-forget, inside a settle span. */
  async settle(event: E, kind: SettleKind, delayMs: number, settings: SettleSettings): Promise<void> {
    const operation = OPERATION[kind];
    const span = this.#startSpan(event, operation);
    const started = this.metering ? performance.now() : 0;
    let failure: unknown;
    try {
      if (this.#settings.confirmAcks) {
        const { timeoutMs, signal } = settings;
        if (signal?.aborted) throw abortError(signal);
        const attempt = () => event.delivery.confirm(kind, delayMs, timeoutMs, signal);
        const first = this.clock.now();
        // The first attempt goes out directly; the retry machinery comes in only when it fails.
        await attempt().catch((err: unknown) =>
          retryAfter(
            err,
            { work: attempt, retry: settings.retry, started: first },
            {
              clock: this.clock,
              signal,
              // Neither a closed connection nor a refused permission is mended by trying again.
              shouldRetry: (e) =>
                !(
                  e instanceof WindshiftError &&
                  (e.code === ErrorCode.Closed || e.code === ErrorCode.PermissionDenied)
                ),
              onRetry: (e, n) => {
                span?.addEvent("retry", { attempt: n, [Attr.ErrorType]: errorType(e) });
                this.#rt.logger.debug(`${operation} failed, retrying`, { id: event.id, attempt: n, error: String(e) });
              },
            },
          ),
        );
      } else {
        // Fire-and-forget fails only on a closed connection, which no retry mends.
        event.delivery.send(kind, delayMs);
      }
    } catch (err) {
      failure = err;
      if (span !== undefined) failSpan(span, err);
      throw err;
    } finally {
      span?.end();
      if (this.metering) {
        this.#rt.telemetry.operationDuration.record(
          (performance.now() - started) / 1000,
          this.settleAttributes(operation, failure === undefined ? undefined : errorType(failure)),
        );
      }
    }
  }

  /** Records how long an event was processed (handed out until settled or let go). */
  recordProcessing(handedOutAt: number): void {
    if (!this.metering) return;
    this.#rt.telemetry.processDuration.record((performance.now() - handedOutAt) / 1000, this.metricAttributes());
  }

  /** Metric attributes of this subscription: connection, stream, consumer, destination template. */
  metricAttributes(): Attributes {
    const connection = this.#rt.telemetry.connection();
    if (connection !== this.#metricConnection) {
      this.#metricConnection = connection;
      this.#settleAttributes.clear();
      this.#metricAttributes = Object.freeze({
        ...connection,
        [Attr.OperationType]: "process",
        [Attr.OperationName]: "process",
        [Attr.Subscription]: this.#settings.consumer,
        [Attr.Stream]: this.#settings.stream,
        [Attr.DestinationTemplate]: this.#settings.template,
      });
    }
    return this.#metricAttributes;
  }

  /** Metric attributes of a settlement, cached per operation when it succeeded. */
  settleAttributes(operation: SettleOperation, failure: string | undefined): Attributes {
    const base = this.metricAttributes();
    if (failure !== undefined) {
      return { ...base, [Attr.OperationType]: "settle", [Attr.OperationName]: operation, [Attr.ErrorType]: failure };
    }
    let attrs = this.#settleAttributes.get(operation);
    if (attrs === undefined) {
      attrs = Object.freeze({ ...base, [Attr.OperationType]: "settle", [Attr.OperationName]: operation });
      this.#settleAttributes.set(operation, attrs);
    }
    return attrs;
  }

  #startSpan(event: E, operation: SettleOperation): Span | undefined {
    const t = this.#rt.telemetry;
    if (!t.tracing()) return undefined;
    return t.startSpan(
      `${operation} ${event.subject}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          ...t.connection(),
          [Attr.OperationType]: "settle",
          [Attr.OperationName]: operation,
          [Attr.Destination]: event.subject,
          [Attr.Subscription]: event.consumer,
          [Attr.Stream]: event.stream,
          [Attr.MessageId]: String(event.id),
        },
      },
      event.context,
    );
  }

  /**
   * One timer for every unsettled event: pings those that need it (and what
   * waits in the buffer, whose processing timeout runs from delivery too),
   * or, without auto-ping (or past `maxAutoPingMs`), lets go of those the
   * engine redelivers by now; logs events held for long.
   */
  #tick(): void {
    const now = ++this.#ticks;
    const time = this.clock.now();
    if (this.#settings.autoPing) {
      for (const delivery of this.#buffered()) {
        if (this.#held.pingExpired(delivery, delivery.receivedAt ?? time, time)) continue;
        try {
          delivery.send("progress");
        } catch {
          // The connection is closed: the event is redelivered after its processing timeout.
        }
      }
    }
    for (const event of this.#inFlight.values()) {
      if (this.#settings.autoPing && !this.#held.pingExpired(event, event.receivedAt, time, event)) {
        // Touched a whole tick ago at least (between one and two ticks: a quarter to half a processing timeout).
        if (now - event.touchedTick >= 2) this.#autoPing(event, now);
        this.#held.warnIfHeld(event, time);
      } else if (now - event.touchedTick > 4) {
        // The engine redelivers it by now; this delivery's processing is over.
        event.endProcessing();
      }
    }
  }

  /**
   * Logs, once per close, the events `close()` gives back because they were
   * never settled (see {@link HeldEvents.warnGivenBack}).
   */
  warnGivenBack(events: readonly E[], waitedMs: number): void {
    this.#held.warnGivenBack(events, this.clock.now(), waitedMs);
  }

  /** A fire-and-forget progress ping; never throws. */
  #autoPing(event: E, tick: number): void {
    event.touchedTick = tick;
    const span = this.#startSpan(event, "progress");
    try {
      event.delivery.send("progress");
    } catch (err) {
      // The connection is closed; redelivery will take care of the event.
      if (span !== undefined) failSpan(span, err);
    }
    span?.end();
  }
}
