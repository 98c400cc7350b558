import { describe, expect, it } from "vitest";
import { type ConsumerOptions, describeConsumer, resolveConsumerConfig } from "../../src/streams/consumers.js";
import { validationAt, windshiftError } from "./expect-error.js";

const TIME = new Date("2030-01-02T03:04:05.000Z");

describe("resolveConsumerConfig", () => {
  it("makes an ephemeral consumer by default, removed after an hour unused", () => {
    expect(resolveConsumerConfig("orders", undefined)).toEqual({
      name: undefined,
      subjects: [],
      from: { kind: "end" },
      processingTimeoutMs: 30_000,
      maxDeliveryAttempts: undefined,
      inactiveThresholdMs: 3_600_000,
      maxUnsettledEvents: 1_000,
    });
  });

  it("gives a durable consumer no inactive threshold by default", () => {
    expect(resolveConsumerConfig("orders", { name: "billing" })).toEqual({
      name: "billing",
      subjects: [],
      from: { kind: "end" },
      processingTimeoutMs: 30_000,
      maxDeliveryAttempts: undefined,
      inactiveThresholdMs: undefined,
      maxUnsettledEvents: 1_000,
    });
  });

  it("takes every option", () => {
    expect(
      resolveConsumerConfig("orders", {
        name: "billing",
        subjects: ["orders.created", "orders.*.paid"],
        from: { time: TIME },
        processingTimeoutMs: 1,
        maxDeliveryAttempts: 5,
        inactiveThresholdMs: 60_000,
        maxUnsettledEvents: 1,
      }),
    ).toEqual({
      name: "billing",
      subjects: ["orders.created", "orders.*.paid"],
      from: { kind: "time", time: TIME },
      processingTimeoutMs: 1,
      maxDeliveryAttempts: 5,
      inactiveThresholdMs: 60_000,
      maxUnsettledEvents: 1,
    });
  });

  it("keeps a given inactive threshold for an ephemeral consumer", () => {
    expect(resolveConsumerConfig("orders", { inactiveThresholdMs: 5_000 }).inactiveThresholdMs).toBe(5_000);
  });

  it.each<[string, string, unknown, string]>([
    ["an invalid stream", "a.b", {}, "stream"],
    ["an invalid name", "s", { name: "a*b" }, "name"],
    ["an empty name", "s", { name: "" }, "name"],
    ["a name that is not a string", "s", { name: 5 }, "name"],
    ["an unknown option", "s", { durable: "x" }, "options.durable"],
    ["options that are not an object", "s", [], "options"],
    ["an invalid subject", "s", { subjects: ["a", ""] }, "subjects[1]"],
    ["a subject twice", "s", { subjects: ["a", "a"] }, "subjects"],
    ["an invalid start", "s", { from: { beginning: true } }, "from"],
    ["a processing timeout of 0", "s", { processingTimeoutMs: 0 }, "processingTimeoutMs"],
    ["a fractional processing timeout", "s", { processingTimeoutMs: 0.5 }, "processingTimeoutMs"],
    ["maxDeliveryAttempts 0", "s", { maxDeliveryAttempts: 0 }, "maxDeliveryAttempts"],
    ["an inactive threshold of 0", "s", { inactiveThresholdMs: 0 }, "inactiveThresholdMs"],
    ["maxUnsettledEvents 0", "s", { maxUnsettledEvents: 0 }, "maxUnsettledEvents"],
    ["a string maxUnsettledEvents", "s", { maxUnsettledEvents: "10" }, "maxUnsettledEvents"],
  ])("refuses %s", (_, stream, options, field) => {
    expect(() => resolveConsumerConfig(stream, options)).toThrow(validationAt(field));
  });

  it("refuses a start time of undefined instead of passing { kind: 'time', time: undefined } to the engine", () => {
    expect(() => resolveConsumerConfig("s", { from: { time: undefined } })).toThrow(windshiftError("VALIDATION"));
  });
});

describe("describeConsumer", () => {
  it("leaves out what is unlimited and never the name", () => {
    expect(describeConsumer(resolveConsumerConfig("s", { name: "d" }))).toEqual({
      subjects: [],
      from: { end: true },
      processingTimeoutMs: 30_000,
      maxUnsettledEvents: 1_000,
    });
  });

  it.each<[string, ConsumerOptions]>([
    ["an ephemeral consumer", {}],
    ["a durable consumer", { name: "d" }],
    ["from the start", { name: "d", from: { start: true } }],
    ["from an id", { from: { id: 10 }, subjects: ["a.>"] }],
    [
      "every option",
      {
        name: "d",
        subjects: ["a", "b.*"],
        from: { time: TIME },
        processingTimeoutMs: 500,
        maxDeliveryAttempts: 3,
        inactiveThresholdMs: 10_000,
        maxUnsettledEvents: 7,
      },
    ],
  ])("round-trips %s: describe(resolve(x)) resolves to the same config", (_, options) => {
    const config = resolveConsumerConfig("s", options);
    const described = describeConsumer(config);
    expect(
      resolveConsumerConfig("s", { ...described, ...(config.name === undefined ? {} : { name: config.name }) }),
    ).toEqual(config);
    const { name: _name, ...rest } = options;
    expect(described).toMatchObject(rest);
  });
});
