import { describe, expect, it } from "vitest";
import { ErrorCode, WindshiftError } from "../../src/errors.js";
import { Attr, connectionAttributes, errorType } from "../../src/telemetry/attributes.js";

describe("errorType", () => {
  const named = (name: string): Error => Object.assign(new Error("x"), { name });

  it.each<[string, unknown, string]>([
    ["a windshift error", new WindshiftError(ErrorCode.Timeout, "slow"), "TIMEOUT"],
    ["a windshift error from another copy", Object.assign(named("WindshiftError"), { code: "CLOSED" }), "CLOSED"],
    ["a named error", named("TimeoutError"), "TimeoutError"],
    ["a plain error", new Error("x"), "Error"],
    ["a TypeError", new TypeError("x"), "TypeError"],
    ["an error without a name", named(""), "_OTHER"],
    ["a string", "failed", "_OTHER"],
    ["undefined", undefined, "_OTHER"],
    ["an error-like object", { name: "TimeoutError", message: "x" }, "_OTHER"],
  ])("of %s is %s", (_, err, type) => {
    expect(errorType(err)).toBe(type);
  });
});

describe("connectionAttributes", () => {
  it("gives every fact it has", () => {
    expect(
      connectionAttributes({ system: "nats", clientId: "7", serverAddress: "127.0.0.1", serverPort: 4222 }),
    ).toEqual({
      [Attr.System]: "nats",
      [Attr.ClientId]: "7",
      [Attr.ServerAddress]: "127.0.0.1",
      [Attr.ServerPort]: 4222,
    });
  });

  it("leaves out the facts it lacks", () => {
    expect(connectionAttributes({ system: "memory" })).toEqual({ "messaging.system": "memory" });
  });
});
