/**
 * What a processor does with an event whose handling failed: retry it after
 * a delay, or give up on it (dead-letter it, or reject it permanently). Pure:
 * the processor classifies the failure and supplies the delay.
 *
 * @module
 */

/**
 * Why an event was dead-lettered (the `WS-Dead-Letter-Reason` header):
 * its handler failed on the last allowed attempt, threw a `PermanentError`
 * (or the backoff decider said so), its payload could not be decoded, its
 * message breaks its `buf.validate` rules (the `validate` option), or no
 * handler knows its type.
 */
export type DeadLetterReason = "max-attempts" | "permanent" | "invalid-data" | "invalid" | "unknown-type";

/** What kind of failure it was. */
export type FailureKind =
  /** The handler (or a middleware) threw: retried with backoff until the attempts run out. */
  | "error"
  /** The handler threw a `PermanentError`: no retry can help. */
  | "permanent"
  /** The event's own payload could not be decoded. */
  | "invalid-data"
  /** The event's message breaks its rules. */
  | "invalid"
  /** No route takes the event's type, and the router rejects such events. */
  | "unknown-type"
  /** No route takes the event's type, and the router gives such events back (`otherwise("nak")`). */
  | "unknown-type-retried";

/** The facts a decision needs. */
export interface FailureFacts {
  readonly kind: FailureKind;
  /** The event's delivery attempt, from 1. */
  readonly attempt: number;
  /** How many deliveries the event gets at most. */
  readonly maxAttempts: number;
  /** The backoff delay for this attempt, or a negative number for "give up now"; asked only when retrying is possible. */
  readonly delayMs: () => number;
}

/** What to do with the event. */
export type FailureDecision =
  | { readonly action: "retry"; readonly delayMs: number }
  | { readonly action: "give-up"; readonly reason: DeadLetterReason };

/** Decides what happens to an event whose handling failed. */
export function decideFailure(facts: FailureFacts): FailureDecision {
  switch (facts.kind) {
    case "permanent":
    case "invalid-data":
    case "invalid":
    case "unknown-type":
      return { action: "give-up", reason: facts.kind };
    case "error":
    case "unknown-type-retried": {
      const delayMs = facts.delayMs();
      if (delayMs < 0) return { action: "give-up", reason: "permanent" };
      if (facts.attempt >= facts.maxAttempts) {
        return { action: "give-up", reason: facts.kind === "error" ? "max-attempts" : "unknown-type" };
      }
      return { action: "retry", delayMs };
    }
  }
}
