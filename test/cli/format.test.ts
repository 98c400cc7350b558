/** The CLI's pure parts: tables and sizes, plan lines, tail's --from, top's rates. */
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/cli/args.js";
import { planLines, summary } from "../../src/cli/commands/apply.js";
import { parseFrom } from "../../src/cli/commands/tail.js";
import { frameOf, type Snapshot } from "../../src/cli/commands/top.js";
import { bytes, optionValue, table } from "../../src/cli/format.js";
import type { ConsumerInfo, StreamInfo } from "../../src/index.js";

describe("the CLI's output", () => {
  it("aligns tables, numbers to the right, without trailing spaces", () => {
    const columns = [{ heading: "NAME" }, { heading: "EVENTS", right: true }, { heading: "LAST" }];
    expect(
      table(columns, [
        ["orders", "12", "-"],
        ["a", "1234567", "2025-01-01T00:00:00Z"],
      ]),
    ).toEqual(["NAME     EVENTS  LAST", "orders       12  -", "a       1234567  2025-01-01T00:00:00Z"]);
  });

  it("prints sizes in binary units and option values as a plan shows them", () => {
    expect([0, 1023, 1536, 10 * 1024 * 1024, 3 * 1024 ** 3].map(bytes)).toEqual([
      "0 B",
      "1023 B",
      "1.5 KiB",
      "10 MiB",
      "3.0 GiB",
    ]);
    expect([3_600_000, undefined, "file", ["a.>"], { start: true }, false].map(optionValue)).toEqual([
      "3600000",
      "default",
      '"file"',
      '["a.>"]',
      '{"start":true}',
      "false",
    ]);
  });

  it("prints one line per change of a plan, with the fields an update changes", () => {
    const plan = {
      changes: [
        {
          kind: "stream",
          name: "orders",
          action: "update",
          diff: [{ field: "maxAgeMs", from: 3_600_000, to: 7_200_000 }],
        },
        { kind: "consumer", name: "billing", stream: "orders", action: "create" },
        { kind: "stream", name: "old", action: "delete" },
      ],
    } as const;
    expect(planLines(plan)).toEqual([
      "update  stream    orders          maxAgeMs: 3600000 → 7200000",
      "create  consumer  orders/billing",
      "delete  stream    old",
    ]);
    expect(summary(plan)).toBe("1 created, 1 updated, 1 deleted");
  });
});

describe("tail --from", () => {
  it("reads start, end, an id or a time", () => {
    expect(parseFrom(undefined)).toEqual({ end: true });
    expect(parseFrom("start")).toEqual({ start: true });
    expect(parseFrom("end")).toEqual({ end: true });
    expect(parseFrom("42")).toEqual({ id: 42 });
    expect(parseFrom("2025-01-31T12:00:00Z")).toEqual({ time: new Date("2025-01-31T12:00:00Z") });
    for (const wrong of ["0", "soon", "2025-13-45"]) expect(() => parseFrom(wrong)).toThrow(UsageError);
  });
});

describe("top's rates", () => {
  const stream = (lastId: number): StreamInfo =>
    ({ name: "orders", config: {}, state: { lastId, events: lastId } }) as unknown as StreamInfo;
  const consumer = (name: string, pending: number, unsettled: number, subjects?: string[]): ConsumerInfo =>
    ({ stream: "orders", name, config: { subjects }, state: { pending, unsettled } }) as unknown as ConsumerInfo;
  const snapshot = (at: number, lastId: number, consumers: ConsumerInfo[]): Snapshot => ({
    at,
    streams: [stream(lastId)],
    consumers,
  });

  it("counts stored events per second, and settled events per second for a consumer of every subject", () => {
    const first = snapshot(0, 100, [consumer("all", 10, 5), consumer("some", 3, 0, ["orders.created"])]);
    // 2 s later: 40 more events; "all" has 20 more to deliver and 2 fewer waiting for an ack: 22 settled.
    const second = snapshot(2_000, 140, [consumer("all", 30, 3), consumer("some", 1, 0, ["orders.created"])]);
    expect(frameOf(undefined, first).eventsPerSecond.get("orders")).toBeUndefined();
    const frame = frameOf(first, second);
    expect(frame.eventsPerSecond.get("orders")).toBe(20);
    expect(frame.acksPerSecond.get("orders/all")).toBe(11);
    expect(frame.acksPerSecond.get("orders/some")).toBeUndefined();
  });
});
