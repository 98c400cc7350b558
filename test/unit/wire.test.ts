import { describe, expect, it } from "vitest";
import { formatTime, parseTime } from "../../src/wire.js";

// The time format is the one piece of the wire format that is pure parsing, so
// it is tested on its own; everything else crosses a real server.
describe("WS-Published-Time", () => {
  it.each([
    ["2024-05-06T07:08:09Z", "2024-05-06T07:08:09.000Z"],
    ["2024-05-06T07:08:09.1Z", "2024-05-06T07:08:09.100Z"],
    ["2024-05-06T07:08:09.123Z", "2024-05-06T07:08:09.123Z"],
    ["2024-05-06T07:08:09.123456789Z", "2024-05-06T07:08:09.123Z"],
    ["2024-05-06T09:08:09.123456789+02:00", "2024-05-06T07:08:09.123Z"],
    ["2024-05-06T02:38:09.5-04:30", "2024-05-06T07:08:09.500Z"],
    ["2024-05-06t07:08:09z", "2024-05-06T07:08:09.000Z"],
  ])("parses %s", (text, iso) => {
    expect(parseTime(text)?.toISOString()).toBe(iso);
  });

  it.each([
    "",
    "2024-05-06",
    "2024-05-06T07:08:09",
    "2024-13-06T07:08:09Z",
    "2024-05-06T25:08:09Z",
    "2024-05-06T07:08:09.1234567890Z",
    "2024-05-06T07:08:09+0200",
    "not a time",
  ])("rejects %j", (text) => {
    expect(parseTime(text)).toBeUndefined();
  });

  it("formats as RFC 3339 UTC with milliseconds, which it parses back", () => {
    const d = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6));
    expect(formatTime(d)).toBe("2024-01-02T03:04:05.006Z");
    expect(parseTime(formatTime(d))?.getTime()).toBe(d.getTime());
  });
});
