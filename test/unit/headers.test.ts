import { describe, expect, it } from "vitest";
import { emptyHeaderMap, headerMap } from "../../src/internal/headers.js";

describe("headerMap", () => {
  it("maps lower-case names to their values", () => {
    expect([
      ...headerMap([
        ["WS-Data-Type", "a.B"],
        ["Nats-Msg-Id", "k"],
      ]),
    ]).toEqual([
      ["ws-data-type", "a.B"],
      ["nats-msg-id", "k"],
    ]);
  });

  it("keeps the first value of a repeated name, in any case", () => {
    const map = headerMap([
      ["X-Tag", "first"],
      ["x-tag", "second"],
      ["X-TAG", "third"],
    ]);
    expect(map.size).toBe(1);
    expect(map.get("x-tag")).toBe("first");
  });

  it("keeps empty values", () => {
    expect(headerMap([["X", ""]]).get("x")).toBe("");
  });

  it("returns the shared empty map for no headers", () => {
    expect(headerMap([])).toBe(emptyHeaderMap);
    expect(emptyHeaderMap.size).toBe(0);
  });
});
