import { describe, expect, it } from "vitest";
import { AsyncQueue } from "../../src/internal/async-queue.js";
import { windshiftError } from "./expect-error.js";

/** Whether `p` has settled, after letting pending callbacks run. */
async function isSettled(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await new Promise<void>((resolve) => setImmediate(resolve));
  return settled;
}

describe("AsyncQueue", () => {
  it("hands out items pushed before the reader asks, oldest first", async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.push(2);
    expect(q.size).toBe(2);
    expect(await q.next()).toEqual({ done: false, value: 1 });
    expect(await q.next()).toEqual({ done: false, value: 2 });
    expect(q.size).toBe(0);
  });

  it("hands an item pushed while the reader waits straight to it", async () => {
    const q = new AsyncQueue<string>();
    const pending = q.next();
    expect(await isSettled(pending)).toBe(false);
    q.push("x");
    expect(q.size).toBe(0);
    expect(await pending).toEqual({ done: false, value: "x" });
  });

  it("applies take when an item is read, on both paths", async () => {
    const taken: number[] = [];
    const q = new AsyncQueue<number, string>({
      take: (n) => {
        taken.push(n);
        return `#${n}`;
      },
    });
    q.push(1);
    expect(taken).toEqual([]);
    expect(await q.next()).toEqual({ done: false, value: "#1" });
    const pending = q.next();
    q.push(2);
    expect(await pending).toEqual({ done: false, value: "#2" });
    expect(taken).toEqual([1, 2]);
  });

  it("does not apply take to shift, drain or queued", () => {
    const q = new AsyncQueue<number, string>({ take: (n) => `#${n}` });
    q.push(1);
    q.push(2);
    q.push(3);
    expect([...q.queued()]).toEqual([1, 2, 3]);
    expect(q.shift()).toBe(1);
    expect(q.drain()).toEqual([2, 3]);
  });

  it("ends after the queued items when ended without an error", async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.end();
    expect(q.ended).toBe(true);
    q.push(2);
    expect(await q.next()).toEqual({ done: false, value: 1 });
    expect(await q.next()).toEqual({ done: true, value: undefined });
    expect(await q.next()).toEqual({ done: true, value: undefined });
  });

  it("ends a waiting reader", async () => {
    const q = new AsyncQueue<number>();
    const pending = q.next();
    q.end();
    expect(await pending).toEqual({ done: true, value: undefined });
  });

  it("throws the end error once, after the queued items, then is done", async () => {
    const q = new AsyncQueue<number>();
    const error = new Error("broken");
    q.push(1);
    q.end(error);
    expect(await q.next()).toEqual({ done: false, value: 1 });
    await expect(q.next()).rejects.toBe(error);
    expect(await q.next()).toEqual({ done: true, value: undefined });
  });

  it("rejects a waiting reader with the end error", async () => {
    const q = new AsyncQueue<number>();
    const error = new Error("broken");
    const pending = q.next();
    q.end(error);
    await expect(pending).rejects.toBe(error);
    expect(await q.next()).toEqual({ done: true, value: undefined });
  });

  it("keeps the first end: a later error is ignored", async () => {
    const q = new AsyncQueue<number>();
    q.end();
    q.end(new Error("late"));
    expect(await q.next()).toEqual({ done: true, value: undefined });
  });

  it("throws the end error out of a for await loop after the items", async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.push(2);
    q.end(new Error("stream failed"));
    const seen: number[] = [];
    const loop = async (): Promise<void> => {
      for await (const n of q) seen.push(n);
    };
    await expect(loop()).rejects.toThrow("stream failed");
    expect(seen).toEqual([1, 2]);
  });

  it("refuses a second reader, naming what is read", () => {
    const q = new AsyncQueue<number>({ what: "the subscription" });
    q[Symbol.asyncIterator]();
    expect(() => q[Symbol.asyncIterator]()).toThrow(windshiftError("VALIDATION"));
    expect(() => q[Symbol.asyncIterator]()).toThrow("the subscription has one reader");
  });

  it("refuses next() while a previous call is pending, and keeps serving the first", async () => {
    const q = new AsyncQueue<number>();
    const first = q.next();
    await expect(q.next()).rejects.toThrow(windshiftError("VALIDATION"));
    q.push(7);
    expect(await first).toEqual({ done: false, value: 7 });
  });

  it("drops the oldest items beyond maxSize", async () => {
    const q = new AsyncQueue<number>({ maxSize: 2 });
    for (const n of [1, 2, 3, 4]) q.push(n);
    expect(q.size).toBe(2);
    expect(await q.next()).toEqual({ done: false, value: 3 });
    expect(await q.next()).toEqual({ done: false, value: 4 });
  });

  it("shifts, drains and lists queued items", () => {
    const q = new AsyncQueue<number>();
    expect(q.shift()).toBeUndefined();
    for (const n of [1, 2, 3]) q.push(n);
    expect(q.shift()).toBe(1);
    expect([...q.queued()]).toEqual([2, 3]);
    expect(q.size).toBe(2);
    expect(q.drain()).toEqual([2, 3]);
    expect(q.size).toBe(0);
    expect(q.drain()).toEqual([]);
  });

  it("keeps order and size through many pushes and shifts", () => {
    const q = new AsyncQueue<number>();
    for (let n = 0; n < 3_000; n++) q.push(n);
    for (let n = 0; n < 2_000; n++) expect(q.shift()).toBe(n);
    q.push(3_000);
    expect(q.size).toBe(1_001);
    const rest = [...q.queued()];
    expect(rest[0]).toBe(2_000);
    expect(rest.at(-1)).toBe(3_000);
    expect(rest).toHaveLength(1_001);
  });

  it("calls onReturn when the reader leaves early, and ends the queue", async () => {
    let returned = 0;
    const q = new AsyncQueue<number>({
      onReturn: async () => {
        returned++;
      },
    });
    q.push(1);
    q.push(2);
    for await (const n of q) {
      expect(n).toBe(1);
      break;
    }
    expect(returned).toBe(1);
    expect(q.ended).toBe(true);
    q.push(3);
    expect([...q.queued()]).toEqual([2]);
  });

  it("returns done from return() without onReturn", async () => {
    const q = new AsyncQueue<number>();
    expect(await q.return()).toEqual({ done: true, value: undefined });
    expect(q.ended).toBe(true);
  });
});
