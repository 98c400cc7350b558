import { describe, expect, it } from "vitest";
import { describeStream, resolveStreamConfig, type StreamOptions } from "../../src/streams/streams.js";
import { streamConfig } from "./engine-support.js";
import { validationAt } from "./expect-error.js";

const TIME = new Date("2030-01-02T03:04:05.000Z");

/** What a stream resolves to with nothing but its subjects given. */
const { name: _name, subjects: _subjects, ...DEFAULTS } = streamConfig("defaults");

describe("resolveStreamConfig", () => {
  it("fills every default", () => {
    expect(resolveStreamConfig("orders", { subjects: ["orders.>"] })).toEqual({
      name: "orders",
      subjects: ["orders.>"],
      ...DEFAULTS,
    });
  });

  it("takes every option", () => {
    const options: StreamOptions = {
      subjects: ["a.*", "b.>"],
      maxAgeMs: 3_600_000,
      maxEvents: 1_000,
      maxEventsPerSubject: 10,
      maxBytes: 1 << 20,
      discardPolicy: "new",
      discardNewPerSubject: true,
      storage: "memory",
      replicas: 3,
      deduplicationWindowMs: 60_000,
      maxEventSize: 4_096,
      sources: [{ stream: "upstream", from: { id: 5 }, subjects: ["x.>"] }],
    };
    expect(resolveStreamConfig("s", options)).toEqual({
      name: "s",
      subjects: ["a.*", "b.>"],
      maxAgeMs: 3_600_000,
      maxEvents: 1_000,
      maxEventsPerSubject: 10,
      maxBytes: 1 << 20,
      maxEventSize: 4_096,
      discardPolicy: "new",
      discardNewPerSubject: true,
      storage: "memory",
      replicas: 3,
      deduplicationWindowMs: 60_000,
      sources: [{ stream: "upstream", from: { kind: "id", id: 5 }, subjects: ["x.>"] }],
    });
  });

  it("resolves a source: from the start, every subject", () => {
    expect(resolveStreamConfig("copy", { sources: [{ stream: "orders" }] })).toEqual({
      name: "copy",
      subjects: [],
      ...DEFAULTS,
      sources: [{ stream: "orders", from: { kind: "start" }, subjects: [] }],
    });
  });

  it("reads a source's start time", () => {
    const config = resolveStreamConfig("copy", { sources: [{ stream: "orders", from: { time: TIME } }] });
    expect(config.sources[0]?.from).toEqual({ kind: "time", time: TIME });
  });

  it.each([
    ["shrinks the default deduplication window to a shorter maxAgeMs", 60_000, 60_000],
    ["keeps the default deduplication window under a longer maxAgeMs", 600_000, 120_000],
    ["keeps the default deduplication window when maxAgeMs equals it", 120_000, 120_000],
  ])("%s", (_, maxAgeMs, window) => {
    const config = resolveStreamConfig("s", { subjects: ["s"], maxAgeMs });
    expect(config.maxAgeMs).toBe(maxAgeMs);
    expect(config.deduplicationWindowMs).toBe(window);
  });

  it("treats maxAgeMs 0 as unlimited", () => {
    const config = resolveStreamConfig("s", { subjects: ["s"], maxAgeMs: 0 });
    expect(config.maxAgeMs).toBeUndefined();
    expect(config.deduplicationWindowMs).toBe(120_000);
    expect(resolveStreamConfig("s", { subjects: ["s"], maxAgeMs: 0, deduplicationWindowMs: 999_999 })).toMatchObject({
      deduplicationWindowMs: 999_999,
    });
  });

  it("accepts a deduplication window up to maxAgeMs", () => {
    const config = resolveStreamConfig("s", { subjects: ["s"], maxAgeMs: 5_000, deduplicationWindowMs: 5_000 });
    expect(config.deduplicationWindowMs).toBe(5_000);
  });

  it("copies the arrays it is given", () => {
    const subjects = ["a"];
    const sourceSubjects = ["x"];
    const config = resolveStreamConfig("s", { subjects, sources: [{ stream: "u", subjects: sourceSubjects }] });
    subjects.push("b");
    sourceSubjects.push("y");
    expect(config.subjects).toEqual(["a"]);
    expect(config.sources[0]?.subjects).toEqual(["x"]);
  });

  it.each<[string, string, unknown, string]>([
    ["an invalid name", "bad.name", { subjects: ["s"] }, "stream"],
    ["an empty name", "", { subjects: ["s"] }, "stream"],
    ["no subjects and no sources", "s", {}, "subjects"],
    ["no options at all", "s", undefined, "subjects"],
    ["an unknown option", "s", { subjects: ["s"], maxAge: 1 }, "options.maxAge"],
    ["options that are not an object", "s", "orders.>", "options"],
    ["subjects that are not an array", "s", { subjects: "s" }, "subjects"],
    ["an invalid subject", "s", { subjects: ["ok", "a..b"] }, "subjects[1]"],
    ["a misplaced >", "s", { subjects: ["a.>.b"] }, "subjects[0]"],
    ["a subject twice", "s", { subjects: ["a", "a"] }, "subjects"],
    ["a negative maxAgeMs", "s", { subjects: ["s"], maxAgeMs: -1 }, "maxAgeMs"],
    ["maxEvents 0", "s", { subjects: ["s"], maxEvents: 0 }, "maxEvents"],
    ["maxEventsPerSubject 0", "s", { subjects: ["s"], maxEventsPerSubject: 0 }, "maxEventsPerSubject"],
    ["a fractional maxBytes", "s", { subjects: ["s"], maxBytes: 1.5 }, "maxBytes"],
    ["a maxEventSize over 2^31-1", "s", { subjects: ["s"], maxEventSize: 2 ** 31 }, "maxEventSize"],
    ["an unknown discardPolicy", "s", { subjects: ["s"], discardPolicy: "oldest" }, "discardPolicy"],
    ["a non-boolean discardNewPerSubject", "s", { subjects: ["s"], discardNewPerSubject: 1 }, "discardNewPerSubject"],
    ["an unknown storage", "s", { subjects: ["s"], storage: "disk" }, "storage"],
    ["replicas 0", "s", { subjects: ["s"], replicas: 0 }, "replicas"],
    ["replicas 6", "s", { subjects: ["s"], replicas: 6 }, "replicas"],
    ["a deduplication window of 0", "s", { subjects: ["s"], deduplicationWindowMs: 0 }, "deduplicationWindowMs"],
    ["a maxAgeMs below the server's 100 ms", "s", { subjects: ["s"], maxAgeMs: 99 }, "maxAgeMs"],
    [
      "a deduplication window below the server's 100 ms",
      "s",
      { subjects: ["s"], deduplicationWindowMs: 99 },
      "deduplicationWindowMs",
    ],
    [
      "a deduplication window longer than maxAgeMs",
      "s",
      { subjects: ["s"], maxAgeMs: 1_000, deduplicationWindowMs: 1_001 },
      "deduplicationWindowMs",
    ],
    [
      "discardNewPerSubject without discardPolicy new",
      "s",
      { subjects: ["s"], discardNewPerSubject: true, maxEventsPerSubject: 1 },
      "discardNewPerSubject",
    ],
    [
      "discardNewPerSubject without maxEventsPerSubject",
      "s",
      { subjects: ["s"], discardNewPerSubject: true, discardPolicy: "new" },
      "discardNewPerSubject",
    ],
    ["sources that are not an array", "s", { sources: { stream: "u" } }, "sources"],
    ["sources: null", "s", { subjects: ["s"], sources: null }, "sources"],
    ["a source that is not an object", "s", { sources: ["u"] }, "sources[0]"],
    ["a source without a stream", "s", { sources: [{ from: { start: true } }] }, "sources[0].stream"],
    ["a source with an invalid stream", "s", { sources: [{ stream: "a b" }] }, "sources[0].stream"],
    ["a source with an unknown key", "s", { sources: [{ stream: "u", name: "u" }] }, "sources[0].name"],
    ["a source starting at the end", "s", { sources: [{ stream: "u", from: { end: true } }] }, "sources[0].from"],
    ["a source with an id of 0", "s", { sources: [{ stream: "u", from: { id: 0 } }] }, "sources[0].from.id"],
    [
      "a source with an invalid subject",
      "s",
      { sources: [{ stream: "u" }, { stream: "v", subjects: ["a b"] }] },
      "sources[1].subjects[0]",
    ],
  ])("refuses %s", (_, name, options, field) => {
    expect(() => resolveStreamConfig(name, options)).toThrow(validationAt(field));
  });
});

describe("describeStream", () => {
  it("leaves unlimited limits and empty sources out", () => {
    const described = describeStream(resolveStreamConfig("s", { subjects: ["s.>"] }));
    expect(described).toEqual({
      subjects: ["s.>"],
      discardPolicy: "old",
      discardNewPerSubject: false,
      storage: "file",
      replicas: 1,
      deduplicationWindowMs: 120_000,
    });
  });

  it("describes sources with their start, and subjects only when filtered", () => {
    const config = resolveStreamConfig("s", {
      sources: [
        { stream: "a" },
        { stream: "b", from: { id: 3 }, subjects: ["b.x", "b.y"] },
        { stream: "c", from: { time: TIME } },
      ],
    });
    expect(describeStream(config).sources).toEqual([
      { stream: "a", from: { start: true } },
      { stream: "b", from: { id: 3 }, subjects: ["b.x", "b.y"] },
      { stream: "c", from: { time: TIME } },
    ]);
  });

  it.each<[string, StreamOptions]>([
    ["subjects only", { subjects: ["orders.>"] }],
    ["a short max age", { subjects: ["a"], maxAgeMs: 30_000 }],
    [
      "every limit",
      {
        subjects: ["a.*", "b"],
        maxAgeMs: 86_400_000,
        maxEvents: 10,
        maxEventsPerSubject: 2,
        maxBytes: 1_000_000,
        discardPolicy: "new",
        discardNewPerSubject: true,
        storage: "memory",
        replicas: 5,
        deduplicationWindowMs: 1_000,
        maxEventSize: 512,
      },
    ],
    ["sources", { sources: [{ stream: "a" }, { stream: "b", from: { time: TIME }, subjects: ["x"] }] }],
  ])("round-trips %s: describe(resolve(x)) resolves to the same config", (_, options) => {
    const config = resolveStreamConfig("s", options);
    const described = describeStream(config);
    expect(resolveStreamConfig("s", described)).toEqual(config);
    expect(described).toMatchObject(options);
  });
});
