import { describe, expect, it } from "vitest";
import type { Position } from "../../src/engines/engine.js";
import { describePosition, parsePosition } from "../../src/streams/position.js";
import { validationAt, windshiftError } from "./expect-error.js";

const TIME = new Date("2030-01-02T03:04:05.678Z");

describe("parsePosition", () => {
  it("leaves undefined to the caller's default", () => {
    expect(parsePosition("from", undefined, { allowEnd: true })).toBeUndefined();
  });

  it.each<[string, unknown, Position]>([
    ["start", { start: true }, { kind: "start" }],
    ["end", { end: true }, { kind: "end" }],
    ["an id", { id: 42 }, { kind: "id", id: 42 }],
    ["id 1", { id: 1 }, { kind: "id", id: 1 }],
    ["a time", { time: TIME }, { kind: "time", time: TIME }],
  ])("reads %s", (_, value, position) => {
    expect(parsePosition("from", value, { allowEnd: true })).toEqual(position);
  });

  it.each<[string, unknown, boolean, string]>([
    ["end for a source", { end: true }, false, "from"],
    ["start: false", { start: false }, true, "from"],
    ["end: false", { end: false }, true, "from"],
    ["two choices", { start: true, end: true }, true, "from"],
    ["an id with a time", { id: 1, time: TIME }, true, "from"],
    ["an empty object", {}, true, "from"],
    ["an unknown key", { sequence: 5 }, true, "from"],
    ["a string", "start", true, "from"],
    ["null", null, true, "from"],
    ["a number", 5, true, "from"],
    ["id 0", { id: 0 }, true, "from.id"],
    ["a fractional id", { id: 1.5 }, true, "from.id"],
    ["a string id", { id: "5" }, true, "from.id"],
    ["an unsafe id", { id: 2 ** 53 }, true, "from.id"],
    ["an invalid date", { time: new Date("nonsense") }, true, "from.time"],
    ["a time string", { time: "2030-01-01T00:00:00Z" }, true, "from.time"],
    ["a time number", { time: 0 }, true, "from.time"],
  ])("refuses %s", (_, value, allowEnd, field) => {
    expect(() => parsePosition("from", value, { allowEnd })).toThrow(validationAt(field));
  });

  // `{ id: undefined }` has the one key `id` but no id: it must be refused
  // (as `from` or `from.id`), not turned into a position without an id.
  it.each<[string, unknown]>([
    ["an id of undefined", { id: undefined }],
    ["a time of undefined", { time: undefined }],
  ])("refuses %s", (_, value) => {
    expect(() => parsePosition("from", value, { allowEnd: true })).toThrow(windshiftError("VALIDATION"));
    expect(() => parsePosition("from", value, { allowEnd: true })).toThrow(/^from/);
  });

  it("names the field it was given", () => {
    expect(() => parsePosition("sources[1].from", { id: -1 }, { allowEnd: false })).toThrow(
      validationAt("sources[1].from.id"),
    );
  });
});

describe("describePosition", () => {
  it.each<[Position, unknown]>([
    [{ kind: "start" }, { start: true }],
    [{ kind: "end" }, { end: true }],
    [{ kind: "id", id: 7 }, { id: 7 }],
    [{ kind: "time", time: TIME }, { time: TIME }],
  ])("describes %j, which parses back", (position, described) => {
    expect(describePosition(position)).toEqual(described);
    expect(parsePosition("from", describePosition(position), { allowEnd: true })).toEqual(position);
  });
});
