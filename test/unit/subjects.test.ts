import { describe, expect, it } from "vitest";
import { compileMatcher, isSubsetOf, matches, overlaps } from "../../src/engines/subjects.js";

describe("memory engine subjects: matches", () => {
  const table: [pattern: string, subject: string, expected: boolean][] = [
    ["a", "a", true],
    ["a", "b", false],
    ["a.b", "a.b", true],
    ["a.b", "a", false],
    ["a", "a.b", false],
    ["a.*", "a.b", true],
    ["a.*", "a", false],
    ["a.*", "a.b.c", false],
    ["*.b", "a.b", true],
    ["*.b", "a.c", false],
    ["a.*.c", "a.b.c", true],
    ["a.*.c", "a.b.d", false],
    ["a.>", "a.b", true],
    ["a.>", "a.b.c.d", true],
    ["a.>", "a", false],
    ["a.>", "ab.c", false],
    [">", "a", true],
    [">", "a.b.c", true],
    ["*", "a", true],
    ["*", "a.b", false],
    ["*.>", "a.b", true],
    ["*.>", "a", false],
    ["a.*.>", "a.b.c", true],
    ["a.*.>", "a.b", false],
    ["orders.created", "orders.created", true],
    ["orders.created", "orders.created.v2", false],
  ];

  it.each(table)("%s matches %s: %s", (pattern, subject, expected) => {
    expect(matches(pattern, subject)).toBe(expected);
    expect(compileMatcher([pattern])(subject)).toBe(expected);
  });

  it("compiles several patterns into one matcher", () => {
    const match = compileMatcher(["a.b", "c.>", "d.*.e", "f"]);
    expect(["a.b", "c.x", "c.x.y", "d.x.e", "f"].map(match)).toEqual([true, true, true, true, true]);
    expect(["a", "a.b.c", "c", "d.x.f", "f.g", "x"].map(match)).toEqual([false, false, false, false, false, false]);
    expect(compileMatcher([])("a")).toBe(false);
  });
});

describe("memory engine subjects: isSubsetOf", () => {
  const table: [filter: string, pattern: string, expected: boolean][] = [
    ["a.b", "a.b", true],
    ["a.b", "a.*", true],
    ["a.b", "a.>", true],
    ["a.*", "a.>", true],
    ["a.*.c", "a.>", true],
    ["a.>", "a.>", true],
    ["a.b.>", "a.>", true],
    ["a.*", "a.*", true],
    ["a.*", "a.b", false],
    ["a.>", "a.*", false],
    ["a.>", "a.b", false],
    ["a", "a.>", false],
    ["a.b", "a.c", false],
    ["a.b.c", "a.*", false],
    [">", ">", true],
    ["a", ">", true],
    [">", "a.>", false],
    ["*.b", "a.b", false],
  ];

  it.each(table)("%s within %s: %s", (filter, pattern, expected) => {
    expect(isSubsetOf(filter, pattern)).toBe(expected);
  });
});

describe("memory engine subjects: overlaps", () => {
  const table: [a: string, b: string, expected: boolean][] = [
    ["a", "a", true],
    ["a", "b", false],
    ["a.>", "a", false],
    ["a.>", "a.b", true],
    ["a.>", "a.b.c", true],
    ["a.*", "a.b", true],
    ["a.*", "a.b.c", false],
    ["a.*", "*.b", true],
    ["a.*.c", "a.b.*", true],
    ["a.*.c", "a.b.d", false],
    ["a.>", "*.b", true],
    ["a.>", "b.>", false],
    [">", "x.y", true],
    ["*", "a.b", false],
    ["orders.>", "payments.>", false],
  ];

  it.each(table)("%s and %s overlap: %s", (a, b, expected) => {
    expect(overlaps(a, b)).toBe(expected);
    expect(overlaps(b, a)).toBe(expected);
  });
});
