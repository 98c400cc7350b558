import { describe, expect, it } from "vitest";
import type { Event } from "../../src/consume/event.js";
import { resolveRejectOptions, resolveSettleOptions } from "../../src/consume/settle-options.js";
import { type Retry, SETTLE_RETRY } from "../../src/internal/retry.js";
import { MAX_DURATION_MS } from "../../src/internal/validate.js";
import { validationAt } from "./expect-error.js";

const SUBSCRIPTION_RETRY: Retry = Object.freeze({ ...SETTLE_RETRY, maxElapsedMs: 1_000 });

/** Stands in for the event a decider looks at. */
const EVENT = { id: 9, deliveryAttempt: 2 } as Event;

describe("resolveSettleOptions", () => {
  it("defaults to the subscription's retry, a 2 s timeout and no signal", () => {
    expect(resolveSettleOptions(undefined, SUBSCRIPTION_RETRY)).toEqual({
      retry: SUBSCRIPTION_RETRY,
      timeoutMs: 2_000,
      signal: undefined,
    });
    expect(resolveSettleOptions({}, undefined).retry).toBeUndefined();
  });

  it("reads retry over the subscription's", () => {
    expect(resolveSettleOptions({ retry: false }, SUBSCRIPTION_RETRY).retry).toBeUndefined();
    expect(resolveSettleOptions({ retry: true }, undefined).retry).toBe(SETTLE_RETRY);
    expect(resolveSettleOptions({ retry: true }, SUBSCRIPTION_RETRY).retry).toBe(SUBSCRIPTION_RETRY);
    expect(resolveSettleOptions({ retry: { maxAttempts: 2 } }, SUBSCRIPTION_RETRY).retry).toEqual({
      ...SUBSCRIPTION_RETRY,
      maxAttempts: 2,
    });
  });

  it("takes a timeout and a signal", () => {
    const signal = new AbortController().signal;
    expect(resolveSettleOptions({ timeoutMs: 1, signal }, undefined)).toEqual({
      retry: undefined,
      timeoutMs: 1,
      signal,
    });
  });

  it.each<[string, unknown, string]>([
    ["an unknown option", { delayMs: 5 }, "options.delayMs"],
    ["options that are not an object", 5, "options"],
    ["a timeout of 0", { timeoutMs: 0 }, "timeoutMs"],
    ["a string timeout", { timeoutMs: "1s" }, "timeoutMs"],
    ["a signal that is not an AbortSignal", { signal: {} }, "signal"],
    ["a bad retry", { retry: { maxAttempts: 0 } }, "retry.maxAttempts"],
    ["a retry with an unknown key", { retry: { tries: 1 } }, "retry.tries"],
    ["a retry that is a number", { retry: 3 }, "retry"],
  ])("refuses %s", (_, options, field) => {
    expect(() => resolveSettleOptions(options, undefined)).toThrow(validationAt(field));
  });
});

describe("resolveRejectOptions", () => {
  it("naks for redelivery per the consumer's defaults when nothing is asked", () => {
    expect(resolveRejectOptions(undefined, SUBSCRIPTION_RETRY, EVENT)).toEqual({
      retry: SUBSCRIPTION_RETRY,
      timeoutMs: 2_000,
      signal: undefined,
      kind: "nak",
      delayMs: 0,
    });
  });

  it.each<[string, unknown, { kind: "nak" | "term"; delayMs: number }]>([
    ["a delay", { delayMs: 1_500 }, { kind: "nak", delayMs: 1_500 }],
    ["a zero delay", { delayMs: 0 }, { kind: "nak", delayMs: 0 }],
    ["permanent", { permanent: true }, { kind: "term", delayMs: 0 }],
    ["permanent: false", { permanent: false }, { kind: "nak", delayMs: 0 }],
  ])("maps %s", (_, options, rejection) => {
    expect(resolveRejectOptions(options, undefined, EVENT)).toMatchObject(rejection);
  });

  it("keeps the settle options with a rejection", () => {
    const signal = new AbortController().signal;
    expect(resolveRejectOptions({ permanent: true, timeoutMs: 10, signal, retry: false }, SETTLE_RETRY, EVENT)).toEqual(
      {
        retry: undefined,
        timeoutMs: 10,
        signal,
        kind: "term",
        delayMs: 0,
      },
    );
  });

  describe("with a decider", () => {
    it("runs it on the event", () => {
      const seen: Event[] = [];
      resolveRejectOptions(
        {
          decider: (e: Event) => {
            seen.push(e);
            return 1;
          },
        },
        undefined,
        EVENT,
      );
      expect(seen).toEqual([EVENT]);
    });

    it.each<[number, { kind: "nak" | "term"; delayMs: number }]>([
      [-1, { kind: "term", delayMs: 0 }],
      [-0.1, { kind: "term", delayMs: 0 }],
      [Number.NEGATIVE_INFINITY, { kind: "term", delayMs: 0 }],
      [0, { kind: "nak", delayMs: 0 }],
      [250, { kind: "nak", delayMs: 250 }],
      [12.4, { kind: "nak", delayMs: 12 }],
      [12.6, { kind: "nak", delayMs: 13 }],
      [MAX_DURATION_MS + 1, { kind: "nak", delayMs: MAX_DURATION_MS }],
      [Number.POSITIVE_INFINITY, { kind: "nak", delayMs: MAX_DURATION_MS }],
    ])("maps a decided %d", (decided, rejection) => {
      expect(resolveRejectOptions({ decider: () => decided }, undefined, EVENT)).toMatchObject(rejection);
    });

    it.each<[string, unknown]>([
      ["NaN", Number.NaN],
      ["a string", "100"],
      ["undefined", undefined],
      ["a bigint", 5n],
    ])("refuses a decider that returns %s", (_, decided) => {
      expect(() => resolveRejectOptions({ decider: () => decided }, undefined, EVENT)).toThrow(validationAt("decider"));
    });

    it("does not run it when the other options are invalid", () => {
      let ran = false;
      const decider = (): number => {
        ran = true;
        return 0;
      };
      expect(() => resolveRejectOptions({ decider, timeoutMs: -1 }, undefined, EVENT)).toThrow(
        validationAt("timeoutMs"),
      );
      expect(ran).toBe(false);
    });
  });

  it.each<[string, unknown, string]>([
    ["delayMs with permanent", { delayMs: 5, permanent: true }, "options"],
    ["delayMs with a decider", { delayMs: 5, decider: () => 1 }, "options"],
    ["permanent with a decider", { permanent: true, decider: () => 1 }, "options"],
    ["all three", { delayMs: 5, permanent: true, decider: () => 1 }, "options"],
    ["a negative delay", { delayMs: -1 }, "delayMs"],
    ["a fractional delay", { delayMs: 1.5 }, "delayMs"],
    ["a delay over the maximum", { delayMs: MAX_DURATION_MS + 1 }, "delayMs"],
    ["a non-boolean permanent", { permanent: "yes" }, "permanent"],
    ["a decider that is not a function", { decider: 5 }, "decider"],
    ["an unknown option", { delay: 5 }, "options.delay"],
    ["a timeout of 0", { timeoutMs: 0 }, "timeoutMs"],
  ])("refuses %s", (_, options, field) => {
    expect(() => resolveRejectOptions(options, undefined, EVENT)).toThrow(validationAt(field));
  });
});
