/**
 * What a subscription says about events it holds unsettled for long: those
 * auto-ping keeps alive past several processing timeouts, those it stops
 * pinging at `maxAutoPingMs`, and those `close()` gives back never settled.
 *
 * @module
 */
import type { Logger } from "../internal/logger.js";

/**
 * An event held unsettled for more than this many processing timeouts, kept
 * alive by auto-ping and not pinged by its handler, is logged (once): a loop
 * that never settles, or a handler that hangs, would otherwise hold it, and
 * hide it from every other subscriber, in silence. Three leaves room for a
 * handler that is merely slow; a handler that works for longer on purpose
 * says so by calling `ping()`.
 */
export const HELD_WARNING_TIMEOUTS = 3;

/** How many event ids a log line names. */
const LOGGED_IDS = 5;

/** What the warnings need of an event. */
export interface HeldEvent {
  readonly id: number;
  readonly subject: string;
  /** When the subscription received it, on the engine's clock. */
  readonly receivedAt: number;
  /** Whether its handler pinged it (then it is being worked on, and long holding is no news). */
  readonly pinged: boolean;
}

/** The subscription's facts the warnings name. */
export interface HeldEventsSettings {
  readonly stream: string;
  readonly consumer: string;
  readonly processingTimeoutMs: number;
  /** Stop auto-pinging an event held this long since its delivery; `undefined` for never. */
  readonly maxAutoPingMs: number | undefined;
}

/** Watches one subscription's held events, and logs each finding once. */
export class HeldEvents {
  readonly #logger: Logger;
  readonly #settings: HeldEventsSettings;
  /** Events already logged as held for long. */
  readonly #warned = new WeakSet<HeldEvent>();
  /** Events and buffered deliveries auto-ping gave up on (`maxAutoPingMs`). */
  readonly #expired = new WeakSet<object>();

  constructor(logger: Logger, settings: HeldEventsSettings) {
    this.#logger = logger;
    this.#settings = settings;
  }

  /**
   * Whether auto-ping gave up on `item` (an event or a buffered delivery)
   * because it was held longer than `maxAutoPingMs`; logs the moment it does
   * for a handed-out `event`.
   */
  pingExpired(item: object, receivedAt: number, time: number, event?: HeldEvent): boolean {
    const max = this.#settings.maxAutoPingMs;
    if (max === undefined) return false;
    if (this.#expired.has(item)) return true;
    if (time - receivedAt < max) return false;
    this.#expired.add(item);
    if (event !== undefined) {
      this.#logger.warn(
        "auto-ping stopped for an event held unsettled longer than maxAutoPingMs; the engine redelivers it after its processing timeout",
        { ...this.#facts(event, time), maxAutoPingMs: max },
      );
    }
    return true;
  }

  /** Logs, once, an event that auto-ping has kept unsettled for more than {@link HELD_WARNING_TIMEOUTS} processing timeouts. */
  warnIfHeld(event: HeldEvent, time: number): void {
    if (event.pinged || this.#warned.has(event)) return;
    if (time - event.receivedAt <= HELD_WARNING_TIMEOUTS * this.#settings.processingTimeoutMs) return;
    this.#warned.add(event);
    this.#logger.warn(
      `event held unsettled for more than ${HELD_WARNING_TIMEOUTS} processing timeouts; auto-ping keeps it from being redelivered: settle it (ack or reject), ping it from a handler that is working on it, or cap auto-ping with maxAutoPingMs`,
      this.#facts(event, time),
    );
  }

  /**
   * Logs, once per close, the events `close()` gives back because they were
   * never settled: how many, for how long the longest was held, and which.
   */
  warnGivenBack(events: readonly HeldEvent[], time: number, waitedMs: number): void {
    if (events.length === 0) return;
    let heldMs = 0;
    for (const event of events) heldMs = Math.max(heldMs, time - event.receivedAt);
    this.#logger.warn("close() gave back events that were handed out and never settled; the engine redelivers them", {
      stream: this.#settings.stream,
      consumer: this.#settings.consumer,
      count: events.length,
      ids: events.slice(0, LOGGED_IDS).map((event) => event.id),
      heldMs,
      waitedMs,
    });
  }

  /** What a log line says about a held event. */
  #facts(event: HeldEvent, time: number): Record<string, unknown> {
    return {
      stream: this.#settings.stream,
      consumer: this.#settings.consumer,
      id: event.id,
      subject: event.subject,
      heldMs: time - event.receivedAt,
      processingTimeoutMs: this.#settings.processingTimeoutMs,
    };
  }
}
