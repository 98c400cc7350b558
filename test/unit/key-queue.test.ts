import { describe, expect, it } from "vitest";
import { KeyQueue } from "../../src/process/key-queue.js";

describe("KeyQueue", () => {
  it("admits the first item of a key and queues later ones behind it", () => {
    const q = new KeyQueue<string>();
    expect(q.admit("a", "a1")).toBe(true);
    expect(q.admit("a", "a2")).toBe(false);
    expect(q.admit("a", "a3")).toBe(false);
    expect(q.waiting).toBe(2);
  });

  it("hands over the waiting items of a key in arrival order, then frees the key", () => {
    const q = new KeyQueue<string>();
    q.admit("a", "a1");
    q.admit("a", "a2");
    q.admit("a", "a3");
    expect(q.done("a")).toBe("a2");
    expect(q.waiting).toBe(1);
    expect(q.done("a")).toBe("a3");
    expect(q.waiting).toBe(0);
    expect(q.done("a")).toBeUndefined();
    // The key is free again: the next item starts at once.
    expect(q.admit("a", "a4")).toBe(true);
  });

  it("runs different keys in parallel", () => {
    const q = new KeyQueue<string>();
    expect(q.admit("a", "a1")).toBe(true);
    expect(q.admit("b", "b1")).toBe(true);
    expect(q.admit("a", "a2")).toBe(false);
    expect(q.admit("b", "b2")).toBe(false);
    expect(q.admit("c", "c1")).toBe(true);
    expect(q.waiting).toBe(2);
    expect(q.done("b")).toBe("b2");
    expect(q.done("c")).toBeUndefined();
    expect(q.done("a")).toBe("a2");
    expect(q.waiting).toBe(0);
  });

  it("treats keys case-sensitively and the empty key as a key", () => {
    const q = new KeyQueue<number>();
    expect(q.admit("K", 1)).toBe(true);
    expect(q.admit("k", 2)).toBe(true);
    expect(q.admit("", 3)).toBe(true);
    expect(q.admit("", 4)).toBe(false);
    expect(q.done("")).toBe(4);
  });

  it("ignores done() for a key with nothing running", () => {
    const q = new KeyQueue<string>();
    expect(q.done("nobody")).toBeUndefined();
    expect(q.waiting).toBe(0);
    expect(q.admit("nobody", "x")).toBe(true);
  });

  it("drains every waiting item, leaving running ones running", () => {
    const q = new KeyQueue<string>();
    q.admit("a", "a1");
    q.admit("a", "a2");
    q.admit("b", "b1");
    q.admit("b", "b2");
    q.admit("b", "b3");
    expect(q.drain().sort()).toEqual(["a2", "b2", "b3"]);
    expect(q.waiting).toBe(0);
    expect(q.drain()).toEqual([]);
    // a1 and b1 still hold their keys until they are done.
    expect(q.admit("a", "a4")).toBe(false);
    expect(q.done("a")).toBe("a4");
    expect(q.done("b")).toBeUndefined();
    expect(q.admit("b", "b4")).toBe(true);
  });

  it("keeps per-key order across a drain", () => {
    const q = new KeyQueue<string>();
    q.admit("a", "a1");
    q.admit("a", "a2");
    q.admit("a", "a3");
    expect(q.drain()).toEqual(["a2", "a3"]);
  });
});
