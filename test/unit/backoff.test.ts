import { describe, expect, it } from "vitest";
import { type Backoff, backoffDelay, readBackoff, resolveBackoffOptions } from "../../src/internal/backoff.js";
import { validationAt } from "./expect-error.js";

const BASE: Backoff = Object.freeze({ initialDelayMs: 100, maxDelayMs: 1_000, multiplier: 2, jitter: 0 });

describe("backoffDelay", () => {
  it.each([
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 800],
    [5, 1_000],
    [50, 1_000],
  ])("grows by the multiplier and stops at the cap: delay %i is %i ms", (n, ms) => {
    expect(backoffDelay(BASE, n, 0.5)).toBe(ms);
  });

  it("treats attempts below 1 as the first", () => {
    expect(backoffDelay(BASE, 0, 0)).toBe(100);
    expect(backoffDelay(BASE, -3, 0)).toBe(100);
  });

  it("keeps the whole delay with random 0 and takes off up to `jitter` of it with random near 1", () => {
    const jittery: Backoff = { ...BASE, jitter: 0.5 };
    expect(backoffDelay(jittery, 3, 0)).toBe(400);
    expect(backoffDelay(jittery, 3, 0.999_999)).toBe(200);
    expect(backoffDelay(jittery, 3, 0.5)).toBe(300);
  });

  it("applies jitter after the cap", () => {
    expect(backoffDelay({ ...BASE, jitter: 0.2 }, 20, 0.999_999)).toBe(800);
  });

  it("can take the whole delay off with jitter 1", () => {
    expect(backoffDelay({ ...BASE, jitter: 1 }, 2, 0.999_999)).toBe(0);
  });

  it("stays flat with multiplier 1", () => {
    const flat: Backoff = { ...BASE, multiplier: 1 };
    expect([1, 2, 10].map((n) => backoffDelay(flat, n, 0))).toEqual([100, 100, 100]);
  });

  it("returns whole milliseconds", () => {
    expect(backoffDelay({ initialDelayMs: 3, maxDelayMs: 100, multiplier: 1.5, jitter: 0 }, 2, 0)).toBe(5);
  });
});

describe("resolveBackoffOptions", () => {
  it("fills every field from the defaults and freezes the result", () => {
    const b = resolveBackoffOptions("backoff", undefined, BASE);
    expect(b).toEqual(BASE);
    expect(Object.isFrozen(b)).toBe(true);
  });

  it("takes given fields over the defaults", () => {
    expect(resolveBackoffOptions("backoff", { initialDelayMs: 5, jitter: 1 }, BASE)).toEqual({
      initialDelayMs: 5,
      maxDelayMs: 1_000,
      multiplier: 2,
      jitter: 1,
    });
  });

  it.each<[string, unknown, string]>([
    ["not an object", 5, "backoff"],
    ["null", null, "backoff"],
    ["an array", [], "backoff"],
    ["an unknown key", { initialDelay: 5 }, "backoff.initialDelay"],
    ["a retry-only key", { maxAttempts: 3 }, "backoff.maxAttempts"],
    ["a negative initial delay", { initialDelayMs: -1 }, "backoff.initialDelayMs"],
    ["a fractional initial delay", { initialDelayMs: 1.5 }, "backoff.initialDelayMs"],
    ["a string initial delay", { initialDelayMs: "10" }, "backoff.initialDelayMs"],
    ["a NaN max delay", { maxDelayMs: Number.NaN }, "backoff.maxDelayMs"],
    ["an infinite max delay", { maxDelayMs: Number.POSITIVE_INFINITY }, "backoff.maxDelayMs"],
    ["a max delay below the initial delay", { initialDelayMs: 500, maxDelayMs: 400 }, "backoff.maxDelayMs"],
    ["a max delay below the default initial delay", { maxDelayMs: 50 }, "backoff.maxDelayMs"],
    ["a multiplier below 1", { multiplier: 0.5 }, "backoff.multiplier"],
    ["an infinite multiplier", { multiplier: Number.POSITIVE_INFINITY }, "backoff.multiplier"],
    ["a NaN multiplier", { multiplier: Number.NaN }, "backoff.multiplier"],
    ["a string multiplier", { multiplier: "2" }, "backoff.multiplier"],
    ["a negative jitter", { jitter: -0.1 }, "backoff.jitter"],
    ["a jitter above 1", { jitter: 1.1 }, "backoff.jitter"],
    ["a NaN jitter", { jitter: Number.NaN }, "backoff.jitter"],
    ["a boolean jitter", { jitter: true }, "backoff.jitter"],
  ])("refuses %s, naming %s", (_, value, field) => {
    const resolve = () => resolveBackoffOptions("backoff", value, BASE);
    expect(resolve).toThrow(validationAt(field));
    expect(resolve).toThrow(`${field}: `);
  });

  it("accepts the boundaries: zero delays, multiplier 1, jitter 0 and 1", () => {
    expect(resolveBackoffOptions("b", { initialDelayMs: 0, maxDelayMs: 0, multiplier: 1, jitter: 0 }, BASE)).toEqual({
      initialDelayMs: 0,
      maxDelayMs: 0,
      multiplier: 1,
      jitter: 0,
    });
    expect(resolveBackoffOptions("b", { jitter: 1 }, BASE).jitter).toBe(1);
  });
});

describe("readBackoff", () => {
  it("ignores keys that are not backoff fields (they are the caller's to check)", () => {
    expect(readBackoff("retry", { maxAttempts: 3, initialDelayMs: 7 }, BASE)).toEqual({ ...BASE, initialDelayMs: 7 });
  });

  it("prefixes errors with the given field", () => {
    expect(() => readBackoff("options.retry", { jitter: 2 }, BASE)).toThrow(/^options\.retry\.jitter: 2 is not/);
  });
});
