import type { EventImpl } from "../consume/delivered-event.js";
import type { Event } from "../consume/event.js";
import { ErrorCode, isWindshiftError, validationError, type WindshiftError } from "../errors.js";
import { describe, isValidSubject } from "../internal/names.js";
import type { Runtime } from "../runtime.js";
import type { RetryDelay } from "./backoff.js";
import { describeError, sendDeadLetter } from "./dead-letter.js";
import { type DeadLetterReason, decideFailure, type FailureKind } from "./failure-policy.js";
import { PermanentError } from "./handlers.js";

/** How a processor's events ended, counted (part of its `stats`). */
export interface OutcomeCounts {
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
  /**
   * Events rejected permanently without a dead letter: none is configured, or
   * the user may not publish to the dead-letter subject (`PERMISSION_DENIED`).
   */
  readonly rejected: number;
}

/** How a processor settles events whose handling failed. */
export interface OutcomeSettings {
  readonly stream: string;
  readonly consumer: string;
  /** Deliveries an event gets at most (already capped by the consumer's). */
  readonly maxAttempts: number;
  readonly backoff: RetryDelay;
  /** Chooses an event's dead-letter subject; `undefined` without dead letters. */
  readonly deadLetter: ((event: Event) => string) | undefined;
  /** Whether the processor is closing (then a give-back is not the handler's settlement). */
  readonly closing: () => boolean;
}

/** A handler's failure that a router raises for an event of a type it has no route for. */
export class UnknownType extends Error {
  override name = "UnknownType";
  readonly kind: FailureKind;
  constructor(type: string, retried: boolean) {
    super(type === "" ? "the event has no WS-Data-Type header" : `no handler for type "${type}"`);
    this.kind = retried ? "unknown-type-retried" : "unknown-type";
  }
}

/**
 * Settles each event by how its handling ended, and counts it: acked when
 * the handler returned, left alone when the handler settled it, retried
 * after the backoff delay when it failed, given up on (dead-lettered or
 * rejected permanently) per the failure policy.
 */
export class Outcomes {
  readonly #rt: Runtime;
  readonly #settings: OutcomeSettings;
  #acked = 0;
  #settledByHandler = 0;
  #failed = 0;
  #retried = 0;
  #deadLettered = 0;
  #rejected = 0;

  constructor(rt: Runtime, settings: OutcomeSettings) {
    this.#rt = rt;
    this.#settings = settings;
  }

  counts(): OutcomeCounts {
    return {
      acked: this.#acked,
      settledByHandler: this.#settledByHandler,
      failed: this.#failed,
      retried: this.#retried,
      deadLettered: this.#deadLettered,
      rejected: this.#rejected,
    };
  }

  /**
   * Settles `event` after its handler ran: `failure` holds what it threw.
   * Never rejects: a settlement that fails is logged, and the engine
   * redelivers the event.
   */
  async settle(event: EventImpl, failure: { error: unknown } | undefined): Promise<void> {
    try {
      if (event.outcome === "release") return;
      if (event.settled) {
        this.#settledByHandler++;
        if (failure !== undefined) this.#failed++;
        return;
      }
      if (failure === undefined) {
        await event.ack();
        this.#acked++;
        return;
      }
      this.#failed++;
      event.recordFailure(failure.error);
      await this.#settleFailure(event, failure.error);
    } catch (err) {
      if (isWindshiftError(err, ErrorCode.AlreadySettled)) {
        // The handler settled it without waiting for the result, or close gave it back.
        if (!this.#settings.closing()) this.#settledByHandler++;
        return;
      }
      this.#rt.logger.warn("settling a processed event failed; the engine will redeliver it", {
        stream: this.#settings.stream,
        consumer: this.#settings.consumer,
        id: event.id,
        error: String(err),
      });
    }
  }

  /** A failed event: retried after the backoff delay, or given up on. */
  async #settleFailure(event: EventImpl, error: unknown): Promise<void> {
    const kind: FailureKind =
      error instanceof UnknownType
        ? error.kind
        : error instanceof PermanentError
          ? "permanent"
          : event.isDataError(error)
            ? "invalid-data"
            : event.isInvalidError(error)
              ? "invalid"
              : "error";
    const decision = decideFailure({
      kind,
      attempt: event.deliveryAttempt,
      maxAttempts: this.#settings.maxAttempts,
      delayMs: () => this.#delayFor(event, error),
    });
    if (decision.action === "give-up") {
      await this.#giveUp(event, decision.reason, error);
      return;
    }
    const { delayMs } = decision;
    await event.reject(delayMs > 0 ? { delayMs } : undefined);
    this.#retried++;
    this.#rt.logger.debug("handler failed; event given back", {
      stream: this.#settings.stream,
      id: event.id,
      attempt: event.deliveryAttempt,
      delayMs,
      error: describeError(error),
    });
  }

  #delayFor(event: EventImpl, error: unknown): number {
    try {
      return this.#settings.backoff(event, error);
    } catch (err) {
      this.#rt.logger.error("the backoff decider failed; retrying after 1 s", { id: event.id, error: String(err) });
      return 1_000;
    }
  }

  /** Dead-letters (when configured) and terminates an event. */
  async #giveUp(event: EventImpl, reason: DeadLetterReason, error: unknown): Promise<void> {
    const facts = {
      stream: this.#settings.stream,
      consumer: this.#settings.consumer,
      id: event.id,
      subject: event.subject,
      attempt: event.deliveryAttempt,
      reason,
      error: describeError(error),
    };
    const chooseSubject = this.#settings.deadLetter;
    if (chooseSubject === undefined) {
      await event.reject({ permanent: true });
      this.#rejected++;
      this.#rt.logger.error("event rejected permanently (no dead-letter subject configured)", facts);
      return;
    }
    let subject: string | undefined;
    try {
      subject = chooseSubject(event);
      if (!isValidSubject(subject)) {
        throw validationError("deadLetter.subject", `returned ${describe(subject)}, not a subject`);
      }
      await sendDeadLetter(this.#rt, subject, event, reason, error);
    } catch (err) {
      if (isWindshiftError(err, ErrorCode.PermissionDenied)) {
        await this.#deadLetterDenied(event, { ...facts, deadLetterSubject: subject }, err);
        return;
      }
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

  /**
   * The user may not publish to the dead-letter subject: that is final, and
   * giving the event back would only fail again at every delivery. It is
   * rejected permanently; it stays stored in its stream, where it can be read
   * back (`getEvent`) once the permissions are fixed.
   */
  async #deadLetterDenied(event: EventImpl, facts: Record<string, unknown>, err: WindshiftError): Promise<void> {
    await event.reject({ permanent: true });
    this.#rejected++;
    this.#rt.logger.error(
      "the dead-letter subject is not permitted: the event is rejected permanently without a dead letter; it stays in its stream",
      { ...facts, deadLetterError: err.message },
    );
  }
}
