import { describe, expect, it } from "vitest";
import { PUBLISH_RETRY, type Retry, resolveRetry, SETTLE_RETRY, withRetry } from "../../src/internal/retry.js";
import { createTestClock } from "../../src/testing/test-clock.js";
import { validationAt, windshiftError } from "./expect-error.js";

const START = Date.UTC(2030, 0, 1);

/** No jitter, so that delays are exact: 100, 200, 400, then 500 ms. */
const STEADY: Retry = Object.freeze({
  initialDelayMs: 100,
  maxDelayMs: 500,
  multiplier: 2,
  jitter: 0,
  maxAttempts: Number.POSITIVE_INFINITY,
  maxElapsedMs: 60_000,
});

describe("resolveRetry", () => {
  it("turns retrying off with false, whatever the current setting", () => {
    expect(resolveRetry("retry", false, STEADY)).toBeUndefined();
    expect(resolveRetry("retry", false, undefined)).toBeUndefined();
  });

  it("keeps the current setting with undefined", () => {
    expect(resolveRetry("retry", undefined, STEADY)).toBe(STEADY);
    expect(resolveRetry("retry", undefined, undefined)).toBeUndefined();
  });

  it("keeps the current setting with true, or picks whenTrue (SETTLE_RETRY by default) when off", () => {
    expect(resolveRetry("retry", true, STEADY)).toBe(STEADY);
    expect(resolveRetry("retry", true, undefined)).toBe(SETTLE_RETRY);
    expect(resolveRetry("retry", true, undefined, PUBLISH_RETRY)).toBe(PUBLISH_RETRY);
  });

  it("merges an object over the current setting", () => {
    const r = resolveRetry("retry", { maxAttempts: 3, jitter: 0.5 }, STEADY);
    expect(r).toEqual({ ...STEADY, maxAttempts: 3, jitter: 0.5 });
    expect(Object.isFrozen(r)).toBe(true);
  });

  it("merges an object over whenTrue when retrying was off", () => {
    expect(resolveRetry("retry", { maxElapsedMs: 1_000 }, undefined)).toEqual({ ...SETTLE_RETRY, maxElapsedMs: 1_000 });
    expect(resolveRetry("retry", {}, undefined, PUBLISH_RETRY)).toEqual(PUBLISH_RETRY);
  });

  it("takes undefined fields from the base", () => {
    expect(resolveRetry("retry", { maxAttempts: undefined, initialDelayMs: undefined }, STEADY)).toEqual(STEADY);
  });

  it("accepts Infinity for maxAttempts and maxElapsedMs", () => {
    const base = { ...STEADY, maxAttempts: 5, maxElapsedMs: 1_000 };
    const r = resolveRetry(
      "retry",
      { maxAttempts: Number.POSITIVE_INFINITY, maxElapsedMs: Number.POSITIVE_INFINITY },
      base,
    );
    expect(r?.maxAttempts).toBe(Number.POSITIVE_INFINITY);
    expect(r?.maxElapsedMs).toBe(Number.POSITIVE_INFINITY);
  });

  it("accepts maxAttempts 1 and maxElapsedMs 0", () => {
    expect(resolveRetry("retry", { maxAttempts: 1, maxElapsedMs: 0 }, STEADY)).toMatchObject({
      maxAttempts: 1,
      maxElapsedMs: 0,
    });
  });

  it.each<[string, unknown, string]>([
    ["a number", 3, "opts.retry"],
    ["a string", "yes", "opts.retry"],
    ["null", null, "opts.retry"],
    ["an array", [1], "opts.retry"],
    ["an unknown key", { attempts: 3 }, "opts.retry.attempts"],
    ["maxAttempts 0", { maxAttempts: 0 }, "opts.retry.maxAttempts"],
    ["a negative maxAttempts", { maxAttempts: -1 }, "opts.retry.maxAttempts"],
    ["a fractional maxAttempts", { maxAttempts: 2.5 }, "opts.retry.maxAttempts"],
    ["a NaN maxAttempts", { maxAttempts: Number.NaN }, "opts.retry.maxAttempts"],
    ["-Infinity maxAttempts", { maxAttempts: Number.NEGATIVE_INFINITY }, "opts.retry.maxAttempts"],
    ["a string maxAttempts", { maxAttempts: "3" }, "opts.retry.maxAttempts"],
    ["a negative maxElapsedMs", { maxElapsedMs: -1 }, "opts.retry.maxElapsedMs"],
    ["a fractional maxElapsedMs", { maxElapsedMs: 1.5 }, "opts.retry.maxElapsedMs"],
    ["a NaN maxElapsedMs", { maxElapsedMs: Number.NaN }, "opts.retry.maxElapsedMs"],
    ["-Infinity maxElapsedMs", { maxElapsedMs: Number.NEGATIVE_INFINITY }, "opts.retry.maxElapsedMs"],
    ["a string maxElapsedMs", { maxElapsedMs: "1s" }, "opts.retry.maxElapsedMs"],
    ["a negative initialDelayMs", { initialDelayMs: -5 }, "opts.retry.initialDelayMs"],
    ["a maxDelayMs below initialDelayMs", { maxDelayMs: 50 }, "opts.retry.maxDelayMs"],
    ["a multiplier below 1", { multiplier: 0 }, "opts.retry.multiplier"],
    ["a jitter above 1", { jitter: 2 }, "opts.retry.jitter"],
  ])("refuses %s, naming %s", (_, value, field) => {
    expect(() => resolveRetry("opts.retry", value, STEADY)).toThrow(validationAt(field));
  });
});

/** A unit of work that fails `failures` times, then returns "done"; records when each attempt ran. */
function flaky(clock: { now(): number }, failures: number) {
  const at: number[] = [];
  const errors: Error[] = [];
  const work = async (attempt: number): Promise<string> => {
    at.push(clock.now() - START);
    expect(attempt).toBe(at.length);
    if (attempt <= failures) {
      const err = new Error(`failure ${attempt}`);
      errors.push(err);
      throw err;
    }
    return "done";
  };
  return { work, at, errors };
}

/** The settled outcome of `p`, without an unhandled rejection while the clock runs. */
function outcome<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

describe("withRetry", () => {
  it("retries after the backoff delays until the work succeeds", async () => {
    const clock = createTestClock({ now: START });
    const { work, at } = flaky(clock, 3);
    const result = outcome(withRetry(work, STEADY, { clock }));
    await clock.advance(10_000);
    expect(await result).toEqual({ value: "done" });
    expect(at).toEqual([0, 100, 300, 700]);
  });

  it("makes one attempt only without a retry setting", async () => {
    const clock = createTestClock({ now: START });
    const { work, at, errors } = flaky(clock, 1);
    const result = outcome(withRetry(work, undefined, { clock }));
    await clock.advance(10_000);
    expect(await result).toEqual({ error: errors[0] });
    expect(at).toEqual([0]);
  });

  it("stops after maxAttempts and rethrows the last failure as it is", async () => {
    const clock = createTestClock({ now: START });
    const { work, at, errors } = flaky(clock, 100);
    const result = outcome(withRetry(work, { ...STEADY, maxAttempts: 3 }, { clock }));
    await clock.advance(10_000);
    expect(at).toEqual([0, 100, 300]);
    expect((await result).error).toBe(errors[2]);
  });

  it("starts no retry after maxElapsedMs and cuts the last delay to fit", async () => {
    const clock = createTestClock({ now: START });
    const { work, at, errors } = flaky(clock, 100);
    const retry = { ...STEADY, multiplier: 1, maxElapsedMs: 250 };
    const result = outcome(withRetry(work, retry, { clock }));
    await clock.advance(10_000);
    // 100-ms delays, the third cut to the 50 ms left.
    expect(at).toEqual([0, 100, 200, 250]);
    expect((await result).error).toBe(errors[3]);
  });

  it("counts the time the work itself took against maxElapsedMs", async () => {
    const clock = createTestClock({ now: START });
    let attempts = 0;
    const slowFailure = async (): Promise<never> => {
      attempts++;
      await new Promise<void>((resolve) => clock.setTimeout(resolve, 300));
      throw new Error("slow failure");
    };
    const result = outcome(withRetry(slowFailure, { ...STEADY, maxElapsedMs: 250 }, { clock }));
    await clock.advance(10_000);
    expect(attempts).toBe(1);
    expect((await result).error).toEqual(new Error("slow failure"));
  });

  it("stops at once when shouldRetry says no, and asks it about the failure", async () => {
    const clock = createTestClock({ now: START });
    const { work, at, errors } = flaky(clock, 100);
    const asked: unknown[] = [];
    const shouldRetry = (err: unknown): boolean => {
      asked.push(err);
      return false;
    };
    const result = outcome(withRetry(work, STEADY, { clock, shouldRetry }));
    await clock.advance(10_000);
    expect(at).toEqual([0]);
    expect(asked).toEqual([errors[0]]);
    expect((await result).error).toBe(errors[0]);
  });

  it("retries while shouldRetry says yes", async () => {
    const clock = createTestClock({ now: START });
    const { work, at } = flaky(clock, 100);
    const shouldRetry = (err: unknown): boolean => (err as Error).message !== "failure 2";
    const result = outcome(withRetry(work, STEADY, { clock, shouldRetry }));
    await clock.advance(10_000);
    expect(at).toEqual([0, 100]);
    expect(((await result).error as Error).message).toBe("failure 2");
  });

  it("tells onRetry about each failure that is retried, with the attempt that failed", async () => {
    const clock = createTestClock({ now: START });
    const { work, errors } = flaky(clock, 100);
    const told: [unknown, number][] = [];
    const onRetry = (err: unknown, attempt: number): void => {
      told.push([err, attempt]);
    };
    const result = outcome(withRetry(work, { ...STEADY, maxAttempts: 3 }, { clock, onRetry }));
    await clock.advance(10_000);
    await result;
    expect(told).toEqual([
      [errors[0], 1],
      [errors[1], 2],
    ]);
  });

  it("refuses to start when the signal is already aborted, with the reason as cause", async () => {
    const clock = createTestClock({ now: START });
    const { work, at } = flaky(clock, 0);
    const reason = new Error("stop");
    for (const retry of [STEADY, undefined]) {
      await expect(withRetry(work, retry, { clock, signal: AbortSignal.abort(reason) })).rejects.toThrow(
        windshiftError("ABORTED", { cause: reason }),
      );
    }
    expect(at).toEqual([]);
  });

  it("rejects with ABORTED when aborted while waiting, and makes no further attempt", async () => {
    const clock = createTestClock({ now: START });
    const { work, at } = flaky(clock, 100);
    const controller = new AbortController();
    const result = outcome(withRetry(work, STEADY, { clock, signal: controller.signal }));
    await clock.advance(150);
    expect(at).toEqual([0, 100]);
    controller.abort("enough");
    expect((await result).error).toEqual(windshiftError("ABORTED", { cause: "enough" }));
    await clock.advance(10_000);
    expect(at).toEqual([0, 100]);
  });

  it("rejects with ABORTED, not the work's failure, when aborted during an attempt, retrying nothing", async () => {
    const clock = createTestClock({ now: START });
    const controller = new AbortController();
    const work = async (): Promise<never> => {
      controller.abort("gone");
      throw new Error("interrupted");
    };
    let retries = 0;
    const onRetry = (): void => {
      retries++;
    };
    await expect(withRetry(work, STEADY, { clock, signal: controller.signal, onRetry })).rejects.toThrow(
      windshiftError("ABORTED", { cause: "gone" }),
    );
    expect(retries).toBe(0);
  });
});
