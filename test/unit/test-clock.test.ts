import { describe, expect, it } from "vitest";
import { isWindshiftError } from "../../src/errors.js";
import { createTestClock } from "../../src/testing/test-clock.js";

const START = Date.UTC(2030, 0, 1);

describe("createTestClock", () => {
  it("starts at the given time, as a Date or epoch ms, and stands still", async () => {
    expect(createTestClock({ now: new Date(START) }).now()).toBe(START);
    const clock = createTestClock({ now: START });
    await new Promise((resolve) => setImmediate(resolve));
    expect(clock.now()).toBe(START);
  });

  it("starts at the real time by default", () => {
    const before = Date.now();
    const now = createTestClock().now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it("refuses an invalid start", () => {
    expect(() => createTestClock({ now: Number.NaN })).toThrow(/now/);
    expect(() => createTestClock({ now: new Date("nonsense") })).toThrow(/now/);
  });

  it("runs timers in due order, ties in scheduling order, with now() at each due time", async () => {
    const clock = createTestClock({ now: START });
    const ran: [string, number][] = [];
    const at = (name: string) => () => ran.push([name, clock.now() - START]);
    clock.setTimeout(at("c"), 300);
    clock.setTimeout(at("a1"), 100);
    clock.setTimeout(at("b"), 200);
    clock.setTimeout(at("a2"), 100);
    clock.setTimeout(at("late"), 1_001);
    await clock.advance(1_000);
    expect(ran).toEqual([
      ["a1", 100],
      ["a2", 100],
      ["b", 200],
      ["c", 300],
    ]);
    expect(clock.now()).toBe(START + 1_000);
    await clock.advance(1);
    expect(ran.at(-1)).toEqual(["late", 1_001]);
  });

  it("does not run a cleared timer; ignores unknown handles", async () => {
    const clock = createTestClock({ now: START });
    let ran = false;
    const handle = clock.setTimeout(() => {
      ran = true;
    }, 10);
    clock.clearTimeout(handle);
    clock.clearTimeout({});
    clock.clearTimeout(undefined);
    await clock.advance(100);
    expect(ran).toBe(false);
  });

  it("runs timers scheduled by timers, and by the promise chains they start, within the span", async () => {
    const clock = createTestClock({ now: START });
    const ran: number[] = [];
    clock.setTimeout(() => {
      ran.push(clock.now() - START);
      // A 0 ms timer scheduled by a timer runs in the same advance, at the same time.
      clock.setTimeout(() => ran.push(clock.now() - START), 0);
      // So does one scheduled after an await chain.
      void Promise.resolve()
        .then(() => Promise.resolve())
        .then(() => clock.setTimeout(() => ran.push(clock.now() - START), 50));
      clock.setTimeout(() => ran.push(clock.now() - START), 500); // beyond the span
    }, 100);
    await clock.advance(200);
    expect(ran).toEqual([100, 100, 150]);
    await clock.advance(400);
    expect(ran).toEqual([100, 100, 150, 600]);
  });

  it("lets the work a timer starts settle before running the next", async () => {
    const clock = createTestClock({ now: START });
    const log: string[] = [];
    clock.setTimeout(() => {
      void (async () => {
        await Promise.resolve();
        await new Promise((resolve) => setImmediate(resolve));
        log.push("first settled");
      })();
    }, 10);
    clock.setTimeout(() => log.push("second"), 10);
    await clock.advance(10);
    expect(log).toEqual(["first settled", "second"]);
  });

  it("advance(0) runs what is due now", async () => {
    const clock = createTestClock({ now: START });
    let ran = 0;
    clock.setTimeout(() => ran++, 0);
    clock.setTimeout(() => ran++, -5);
    await clock.advance(0);
    expect(ran).toBe(2);
    expect(clock.now()).toBe(START);
  });

  it("runs concurrent advances one after another", async () => {
    const clock = createTestClock({ now: START });
    const ran: number[] = [];
    for (const ms of [100, 200, 300]) clock.setTimeout(() => ran.push(clock.now() - START), ms);
    await Promise.all([clock.advance(150), clock.advance(150)]);
    expect(ran).toEqual([100, 200, 300]);
    expect(clock.now()).toBe(START + 300);
  });

  it("refuses a negative or non-finite span with VALIDATION", async () => {
    const clock = createTestClock({ now: START });
    for (const ms of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const err = await clock.advance(ms).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isWindshiftError(err, "VALIDATION")).toBe(true);
    }
    expect(clock.now()).toBe(START);
  });

  it("rejects with a timer's error and keeps the later timers scheduled", async () => {
    const clock = createTestClock({ now: START });
    let later = false;
    clock.setTimeout(() => {
      throw new Error("boom");
    }, 10);
    clock.setTimeout(() => {
      later = true;
    }, 20);
    await expect(clock.advance(100)).rejects.toThrow("boom");
    expect(later).toBe(false);
    await clock.advance(100);
    expect(later).toBe(true);
  });
});
