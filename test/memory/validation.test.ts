import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, isWindshiftError, type WindshiftError } from "../../src/index.js";
import { createMemoryEvents, createMemoryStore, createTestClock } from "../../src/testing/index.js";
import { expectRejection } from "../conformance/validation-cases.js";

// The factories of windshift/testing validate their options as createEvents
// does: unknown keys, values of the wrong kind and contradictions are refused
// with VALIDATION, naming the option, when the factory is called. (The client
// options createMemoryEvents shares with createEvents are checked in the
// conformance suite, test/conformance/validation.test.ts.)

/** Calls `make`, which must throw a VALIDATION error synchronously; returns it. */
function refusal(make: () => unknown): WindshiftError {
  let err: unknown;
  try {
    make();
  } catch (e) {
    err = e;
  }
  if (!isWindshiftError(err)) throw new Error(`expected a WindshiftError, got ${err === undefined ? "success" : err}`);
  expect(err.code, err.message).toBe(ErrorCode.Validation);
  return err;
}

const NOT_CLOCKS: [string, unknown][] = [
  ["an empty object", {}],
  ["an object with now() only", { now: () => 0 }],
  ["a Date", new Date()],
  ["Date.now", Date.now],
  ["a string", "now"],
  ["null", null],
];

const BAD_PAYLOAD_SIZES: unknown[] = [0, -1, 1.5, Number.NaN, "1024"];

describe("createMemoryEvents", () => {
  it.each<[string, unknown, string]>([
    ["options that are a string", "verbose", "options"],
    ["options that are an array", [], "options"],
    ["options that are null", null, "options"],
    ["an unknown option", { tracer: {} }, "options.tracer"],
    ["a JetStream-only option", { maxPublishesInFlight: 16 }, "options.maxPublishesInFlight"],
  ])("refuses %s", (_, options, field) => {
    expect(refusal(() => createMemoryEvents(options as never)).message).toContain(field);
  });

  it.each(NOT_CLOCKS)("refuses a clock that is %s", (_, clock) => {
    expect(refusal(() => createMemoryEvents({ clock: clock as never })).message).toContain("clock");
  });

  it.each(BAD_PAYLOAD_SIZES)("refuses maxPayloadBytes %s", (value) => {
    expect(refusal(() => createMemoryEvents({ maxPayloadBytes: value as never })).message).toContain("maxPayloadBytes");
  });

  it.each<[string, unknown]>([
    ["a plain object shaped like one", { clock: createTestClock(), close: async () => {} }],
    ["a test clock", createTestClock()],
    ["a string", "default"],
    ["null", null],
  ])("refuses a store that is not from createMemoryStore: %s", (_, store) => {
    expect(refusal(() => createMemoryEvents({ store: store as never })).message).toContain("store");
  });

  it("refuses a clock that differs from the store's", () => {
    const store = createMemoryStore({ clock: createTestClock() });
    expect(refusal(() => createMemoryEvents({ store, clock: createTestClock() })).message).toContain("clock");
  });

  it("refuses a maxPayloadBytes next to a store, which would not be the store's", () => {
    const store = createMemoryStore({ clock: createTestClock() });
    expect(refusal(() => createMemoryEvents({ store, maxPayloadBytes: 10 })).message).toContain("maxPayloadBytes");
  });

  it("takes a store with its own clock, given again or not (control)", async () => {
    const clock = createTestClock();
    const store = createMemoryStore({ clock });
    const a = createMemoryEvents({ store, clock });
    const b = createMemoryEvents({ store });
    await a.ensureStream("s", { subjects: ["s.>"] });
    expect(await b.publish("s.a", TestEventSchema, {})).toEqual({ id: 1, stream: "s", duplicate: false });
    await store.close();
  });

  it("honours its own maxPayloadBytes (control)", async () => {
    const events = createMemoryEvents({ clock: createTestClock(), maxPayloadBytes: 8 });
    await events.ensureStream("s", { subjects: ["s.>"] });
    // "12345678" encodes to 10 bytes: a tag, a length and the text.
    await expectRejection(
      () => events.publish("s.a", TestEventSchema, { text: "12345678" }),
      ErrorCode.Validation,
      "data",
    );
    expect((await events.publish("s.a", TestEventSchema, { text: "123456" })).id).toBe(1);
    await events.close();
  });

  it("a client over a closed store fails its calls with CLOSED", async () => {
    const store = createMemoryStore({ clock: createTestClock() });
    const events = createMemoryEvents({ store });
    await store.close();
    await expectRejection(() => events.ensureStream("s", { subjects: ["s.>"] }), ErrorCode.Closed);
  });
});

describe("createMemoryStore", () => {
  it.each<[string, unknown, string]>([
    ["options that are a string", "fast", "options"],
    ["options that are null", null, "options"],
    ["an unknown option", { maxBytes: 10 }, "options.maxBytes"],
    ["a client option", { logger: console }, "options.logger"],
    ["a store option of createMemoryEvents", { store: createMemoryStore() }, "options.store"],
  ])("refuses %s", (_, options, field) => {
    expect(refusal(() => createMemoryStore(options as never)).message).toContain(field);
  });

  it.each(NOT_CLOCKS)("refuses a clock that is %s", (_, clock) => {
    expect(refusal(() => createMemoryStore({ clock: clock as never })).message).toContain("clock");
  });

  it.each(BAD_PAYLOAD_SIZES)("refuses maxPayloadBytes %s", (value) => {
    expect(refusal(() => createMemoryStore({ maxPayloadBytes: value as never })).message).toContain("maxPayloadBytes");
  });

  it("keeps the clock it is given (control)", async () => {
    const clock = createTestClock();
    const store = createMemoryStore({ clock, maxPayloadBytes: 1 });
    expect(store.clock).toBe(clock);
    await store.close();
  });
});

describe("createTestClock", () => {
  it.each<[string, unknown, string]>([
    ["options that are a string", "2030-01-01", "options"],
    ["options that are a number", 0, "options"],
    ["options that are null", null, "options"],
    ["an unknown option", { start: 0 }, "options.start"],
    ["a misspelt now", { nowMs: 0 }, "options.nowMs"],
  ])("refuses %s", (_, options, field) => {
    expect(refusal(() => createTestClock(options as never)).message).toContain(field);
  });

  it.each<[string, unknown]>([
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["an invalid Date", new Date(Number.NaN)],
    ["a date string", "2030-01-01T00:00:00Z"],
    ["null", null],
  ])("refuses now: %s", (_, now) => {
    expect(refusal(() => createTestClock({ now: now as never })).message).toContain("now");
  });

  it.each<[string, unknown]>([
    ["-1", -1],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ['"5"', "5"],
  ])("advance(%s) rejects with VALIDATION, moving nothing", async (_, ms) => {
    const clock = createTestClock({ now: 1_000 });
    let fired = false;
    clock.setTimeout(() => {
      fired = true;
    }, 0);
    await expectRejection(() => clock.advance(ms as never), ErrorCode.Validation, "ms");
    expect(clock.now()).toBe(1_000);
    expect(fired).toBe(false);
    // The clock still works afterwards.
    await clock.advance(0);
    expect(fired).toBe(true);
  });
});
