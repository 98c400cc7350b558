import { describe, expect, it } from "vitest";
import {
  type DeadLetterReason,
  decideFailure,
  type FailureDecision,
  type FailureKind,
} from "../../src/process/failure-policy.js";

/** A delay callback that counts its calls. */
function delay(ms: number) {
  const calls = { count: 0 };
  const delayMs = (): number => {
    calls.count++;
    return ms;
  };
  return { delayMs, calls };
}

describe("decideFailure", () => {
  describe.each<[FailureKind, DeadLetterReason]>([
    ["permanent", "permanent"],
    ["invalid-data", "invalid-data"],
    ["invalid", "invalid"],
    ["unknown-type", "unknown-type"],
  ])("kind %s", (kind, reason) => {
    it.each([
      [1, 5, -1],
      [1, 5, 0],
      [1, 5, 1_000],
      [5, 5, 1_000],
      [9, 5, 0],
    ])("gives up at once at attempt %i of %i (delay %i), without asking for a delay", (attempt, maxAttempts, ms) => {
      const { delayMs, calls } = delay(ms);
      expect(decideFailure({ kind, attempt, maxAttempts, delayMs })).toEqual({ action: "give-up", reason });
      expect(calls.count).toBe(0);
    });
  });

  describe.each<[FailureKind, DeadLetterReason]>([
    ["error", "max-attempts"],
    ["unknown-type-retried", "unknown-type"],
  ])("kind %s", (kind, exhausted) => {
    it.each<[string, number, number, number, FailureDecision]>([
      ["below max, positive delay", 1, 5, 250, { action: "retry", delayMs: 250 }],
      ["below max, zero delay", 4, 5, 0, { action: "retry", delayMs: 0 }],
      ["below max, negative delay", 1, 5, -1, { action: "give-up", reason: "permanent" }],
      ["at max, positive delay", 5, 5, 250, { action: "give-up", reason: exhausted }],
      ["at max, zero delay", 5, 5, 0, { action: "give-up", reason: exhausted }],
      ["at max, negative delay", 5, 5, -1, { action: "give-up", reason: "permanent" }],
      ["past max, positive delay", 7, 5, 250, { action: "give-up", reason: exhausted }],
      ["unlimited attempts", 1_000, Number.POSITIVE_INFINITY, 10, { action: "retry", delayMs: 10 }],
    ])("%s", (_, attempt, maxAttempts, ms, decision) => {
      const { delayMs, calls } = delay(ms);
      expect(decideFailure({ kind, attempt, maxAttempts, delayMs })).toEqual(decision);
      expect(calls.count).toBe(1);
    });
  });
});
