import { afterEach, describe, expect, it, vi } from "vitest";
import type { Event } from "../../src/consume/event.js";
import { MAX_DURATION_MS } from "../../src/internal/validate.js";
import { PROCESS_BACKOFF, resolveProcessBackoff } from "../../src/process/backoff.js";
import { validationAt } from "./expect-error.js";

/** The only part of an event the backoff reads. */
function eventAt(deliveryAttempt: number): Event {
  return { deliveryAttempt } as Event;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("resolveProcessBackoff", () => {
  it("defaults to 1 s doubling up to 5 minutes, with up to 20 % jitter", () => {
    expect(PROCESS_BACKOFF).toEqual({ initialDelayMs: 1_000, maxDelayMs: 300_000, multiplier: 2, jitter: 0.2 });
    expect(Object.isFrozen(PROCESS_BACKOFF)).toBe(true);
    const delay = resolveProcessBackoff(undefined);
    vi.spyOn(Math, "random").mockReturnValue(0);
    expect([1, 2, 3, 9, 10, 30].map((n) => delay(eventAt(n), new Error()))).toEqual([
      1_000, 2_000, 4_000, 256_000, 300_000, 300_000,
    ]);
    vi.spyOn(Math, "random").mockReturnValue(0.999_999);
    expect(delay(eventAt(1), new Error())).toBe(800);
    expect(delay(eventAt(30), new Error())).toBe(240_000);
  });

  it("waits the n-th delay for the n-th delivery, per the given options", () => {
    const delay = resolveProcessBackoff({ initialDelayMs: 10, maxDelayMs: 100, multiplier: 3, jitter: 0 });
    expect([1, 2, 3, 4].map((n) => delay(eventAt(n), undefined))).toEqual([10, 30, 90, 100]);
  });

  it.each<[string, unknown, string]>([
    ["a number", 1_000, "backoff"],
    ["null", null, "backoff"],
    ["an unknown key", { maxAttempts: 3 }, "backoff.maxAttempts"],
    ["a bad jitter", { jitter: 5 }, "backoff.jitter"],
    ["a max below the default initial delay", { maxDelayMs: 10 }, "backoff.maxDelayMs"],
  ])("refuses %s at once, naming %s", (_, value, field) => {
    expect(() => resolveProcessBackoff(value)).toThrow(validationAt(field));
  });

  describe("with a decider", () => {
    it("passes the event and the error to the decider", () => {
      const seen: unknown[] = [];
      const event = eventAt(3);
      const error = new Error("boom");
      resolveProcessBackoff((e: Event, err: unknown) => {
        seen.push(e, err);
        return 5;
      })(event, error);
      expect(seen).toEqual([event, error]);
    });

    it.each([
      [1_500, 1_500],
      [0, 0],
      [12.4, 12],
      [12.5, 13],
      [-1, -1],
      [-0.5, -1],
      [-1_000, -1],
      [Number.NEGATIVE_INFINITY, -1],
      [MAX_DURATION_MS + 1, MAX_DURATION_MS],
      [Number.POSITIVE_INFINITY, MAX_DURATION_MS],
    ])("maps a decided %d to %d", (decided, ms) => {
      expect(resolveProcessBackoff(() => decided)(eventAt(1), undefined)).toBe(ms);
    });

    it.each<[string, unknown]>([
      ["NaN", Number.NaN],
      ["a string", "100"],
      ["undefined", undefined],
      ["null", null],
    ])("refuses a decider that returns %s", (_, decided) => {
      const delay = resolveProcessBackoff(() => decided);
      expect(() => delay(eventAt(1), undefined)).toThrow(validationAt("backoff"));
    });
  });
});
