import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { isWindshiftError } from "../../src/errors.js";
import { assertName, assertSubject } from "../../src/internal/names.js";
import { type Defaults, mergeOptions } from "../../src/internal/options.js";
import {
  closestName,
  editDistance,
  oneOf,
  rejectUnknown,
  subjectList,
  unknownOption,
} from "../../src/internal/validate.js";
import { consumerDefaults } from "../../src/streams/consumers.js";
import { parsePosition } from "../../src/streams/position.js";
import { streamDefaults } from "../../src/streams/streams.js";
import { validationAt } from "./expect-error.js";

const STREAM_OPTIONS = Object.keys(streamDefaults);

describe("editDistance", () => {
  it.each<[string, string, number]>([
    ["", "", 0],
    ["abc", "", 3],
    ["", "abc", 3],
    ["kitten", "sitting", 3],
    ["maxagems", "maxagems", 0],
    ["maxage", "maxagems", 2],
    ["replcias", "replicas", 1], // a swap of neighbours is one edit
    ["storgae", "storage", 1],
  ])("%s → %s is %d", (a, b, distance) => {
    expect(editDistance(a, b)).toBe(distance);
    expect(editDistance(b, a)).toBe(distance);
  });

  it("stops once the distance is certain to pass the limit", () => {
    expect(editDistance("abcdefgh", "zyxwvuts", 2)).toBe(3);
    expect(editDistance("abc", "abd", 2)).toBe(1);
  });
});

describe("closestName", () => {
  it.each<[string, string]>([
    ["maxAgeMS", "maxAgeMs"], // case only
    ["maxage", "maxAgeMs"], // the unit left out, any case
    ["maxEvent", "maxEvents"],
    ["replicaz", "replicas"],
    ["storgae", "storage"],
    ["subject", "subjects"],
    ["maxEventsPerSubjects", "maxEventsPerSubject"],
  ])("suggests for %s: %s", (typo, meant) => {
    expect(closestName(typo, STREAM_OPTIONS)).toBe(meant);
  });

  it("suggests nothing for a name too far from every option", () => {
    for (const far of ["durable", "retention", "x", "mirror", "dedupWindowMs", "ack"]) {
      expect(closestName(far, STREAM_OPTIONS), far).toBeUndefined();
    }
  });

  it("allows about one edit in three characters, and one at least", () => {
    expect(closestName("ab", ["ac"])).toBe("ac");
    expect(closestName("ab", ["cd"])).toBeUndefined();
    expect(closestName("abcdef", ["abcxyf"])).toBe("abcxyf"); // 2 edits in 6
    expect(closestName("abcdef", ["axcxyf"])).toBeUndefined(); // 3 edits in 6
  });

  it("prefers the closest, and the first of equals", () => {
    expect(closestName("maxBytez", ["maxBytes", "maxBytez1"])).toBe("maxBytes");
    expect(closestName("abcx", ["abcy", "abcz"])).toBe("abcy");
  });
});

describe("unknownOption", () => {
  it("names the option and the closest known one", () => {
    const err = unknownOption("options", "maxAgeMS", STREAM_OPTIONS);
    expect(err).toEqual(validationAt("options.maxAgeMS"));
    expect(err.message).toBe("options.maxAgeMS: is not a known option; did you mean maxAgeMs?");
  });

  it("keeps the plain message when nothing is close", () => {
    expect(unknownOption("options", "durable", Object.keys(consumerDefaults)).message).toBe(
      "options.durable: is not a known option",
    );
  });

  it("names what an old option was renamed to, among the names the call knows", () => {
    expect(unknownOption("options", "maxPendingEvents", Object.keys(consumerDefaults)).message).toBe(
      "options.maxPendingEvents: is not a known option; it was renamed to maxUnsettledEvents",
    );
    expect(unknownOption("options", "maxPendingEvents", ["prefetch", "signal"]).message).toBe(
      "options.maxPendingEvents: is not a known option; it was renamed to prefetch",
    );
    expect(unknownOption("retry", "retries", ["maxAttempts", "initialDelayMs", "maxDelayMs"]).message).toBe(
      "retry.retries: is not a known option; it was renamed to maxAttempts",
    );
    // An old name the call never had gets the ordinary treatment.
    expect(unknownOption("options", "maxPendingEvents", STREAM_OPTIONS).message).toBe(
      "options.maxPendingEvents: is not a known option",
    );
  });

  it("never treats an inherited property name as an old name", () => {
    expect(unknownOption("options", "toString", ["signal"]).message).toBe("options.toString: is not a known option");
  });
});

describe("mergeOptions and rejectUnknown suggest", () => {
  interface Sample {
    readonly timeoutMs?: number;
    readonly schema?: unknown;
  }
  const defaults: Defaults<Sample> = Object.freeze({ timeoutMs: 1_000, schema: undefined });

  it("the closest known option", () => {
    expect(() => mergeOptions("options", { timeout: 5 }, defaults)).toThrow(
      "options.timeout: is not a known option; did you mean timeoutMs?",
    );
    expect(() => rejectUnknown({ subjekt: "a" }, new Set(["subject"]), "deadLetter")).toThrow(
      "deadLetter.subjekt: is not a known option; did you mean subject?",
    );
  });

  it("how to pass a schema given in place of options", () => {
    let err: unknown;
    try {
      mergeOptions("options", TestEventSchema, defaults);
    } catch (e) {
      err = e;
    }
    expect(isWindshiftError(err, "VALIDATION")).toBe(true);
    expect((err as Error).message).toBe(
      "options: is a message schema (windshift.test.v1.TestEvent), not an options object; pass it as { schema }",
    );
    const noSchema: Defaults<{ readonly signal?: AbortSignal }> = Object.freeze({ signal: undefined });
    expect(() => mergeOptions("options", TestEventSchema, noSchema)).toThrow(
      "options: is a message schema (windshift.test.v1.TestEvent), not an options object",
    );
  });
});

describe("validation messages name what is wrong", () => {
  const message = (work: () => unknown): string => {
    try {
      work();
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error("expected a validation error");
  };

  it.each<[unknown, string]>([
    [
      "orders.created",
      'stream: "orders.created" is not a valid name: "." is not allowed (a subject has dots, a name does not)',
    ],
    ["bad name", 'stream: "bad name" is not a valid name: " " is not allowed'],
    ["", 'stream: "" is not a valid name: it is empty'],
    ["n".repeat(256), "is not a valid name: it is 256 characters long"],
    [42, "stream: 42 is not a valid name (1-255"],
  ])("a name: %j", (name, text) => {
    expect(message(() => assertName("stream", name))).toContain(text);
  });

  it.each<[string, boolean, string]>([
    [
      "orders..created",
      false,
      'subject: "orders..created" is not a valid subject: token 2 is empty (two dots in a row, or a dot at an end)',
    ],
    ["orders.*", false, 'subject: "orders.*" is not a valid subject: token 2 is the wildcard "*", not allowed here'],
    ["orders.>.x", true, 'subject: "orders.>.x" is not a valid subject: token 2 is ">", which may only be the last'],
    ["orders.cré", false, 'subject: "orders.cré" is not a valid subject: token 2 has "é"'],
    ["", false, 'subject: "" is not a valid subject: it is empty'],
  ])("a subject: %j (wildcards: %s)", (subject, wildcards, text) => {
    expect(message(() => assertSubject("subject", subject, { wildcards }))).toContain(text);
  });

  it("a choice suggests the one meant", () => {
    expect(message(() => oneOf("storage", "Memory", ["file", "memory"]))).toBe(
      'storage: "Memory" is not one of "file", "memory"; did you mean "memory"?',
    );
    expect(message(() => oneOf("storage", "disk", ["file", "memory"]))).toBe(
      'storage: "disk" is not one of "file", "memory"',
    );
  });

  it("a start position shows what was given", () => {
    expect(message(() => parsePosition("from", { start: true, end: true }, { allowEnd: true }))).toBe(
      "from: { start: true, end: true } is not one of { start: true }, { end: true }, { id }, or { time } (exactly one key)",
    );
    expect(message(() => parsePosition("from", { start: false }, { allowEnd: false }))).toBe(
      "from: { start: false } is not one of { start: true }, { id }, or { time } (exactly one key)",
    );
  });

  it("a subject list names the subject given twice, and how to write a single one", () => {
    expect(message(() => subjectList("subjects", ["a", "b", "a"]))).toBe('subjects: lists "a" twice');
    expect(message(() => subjectList("subjects", "orders.>"))).toBe(
      'subjects: "orders.>" is not an array of subjects; write ["orders.>"]',
    );
  });
});
