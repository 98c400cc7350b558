import type { NatsConnection } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import {
  atLeast,
  parseVersion,
  requireServer,
  serverVersion,
  type Version,
} from "../../src/engines/jetstream/server-version.js";
import { windshiftError } from "./expect-error.js";

const connectedTo = (version: string | undefined): NatsConnection =>
  ({ info: version === undefined ? undefined : { version } }) as unknown as NatsConnection;

describe("parseVersion", () => {
  it.each<[string, Version]>([
    ["2.9.10", [2, 9, 10]],
    ["2.10.0", [2, 10, 0]],
    ["v2.10.0-beta.1", [2, 10, 0]],
    ["  2.11.3  ", [2, 11, 3]],
    ["10.0.1+build", [10, 0, 1]],
    ["2.10", [0, 0, 0]],
    ["", [0, 0, 0]],
    ["nats-server", [0, 0, 0]],
    ["x2.9.10", [0, 0, 0]],
  ])("parses %j as %j", (text, version) => {
    expect(parseVersion(text)).toEqual(version);
  });
});

describe("atLeast", () => {
  it.each<[Version, Version, boolean]>([
    [[2, 9, 10], [2, 9, 10], true],
    [[2, 9, 10], [2, 9, 0], true],
    [[2, 9, 10], [2, 10, 0], false],
    [[2, 10, 0], [2, 9, 10], true],
    [[2, 10, 0], [2, 9, 99], true],
    [[3, 0, 0], [2, 10, 0], true],
    [[1, 99, 99], [2, 0, 0], false],
    [[2, 9, 9], [2, 9, 10], false],
    [[0, 0, 0], [0, 0, 0], true],
  ])("%j >= %j is %s", (a, b, expected) => {
    expect(atLeast(a, b)).toBe(expected);
  });
});

describe("serverVersion and requireServer", () => {
  it("read the connected server's version, 0.0.0 when unknown", () => {
    expect(serverVersion(connectedTo("2.10.7"))).toEqual([2, 10, 7]);
    expect(serverVersion(connectedTo(undefined))).toEqual([0, 0, 0]);
  });

  it("passes on a new enough server", () => {
    expect(() => requireServer(connectedTo("2.10.0"), [2, 10, 0], "a feature")).not.toThrow();
  });

  it("refuses an older server, naming the feature and both versions", () => {
    expect(() => requireServer(connectedTo("2.9.10"), [2, 10, 0], "a feature")).toThrow(
      windshiftError("UNSUPPORTED_FEATURE", {
        message: "a feature needs nats-server 2.10.0 or newer; the connected server is 2.9.10",
        details: { feature: "a feature", needed: "2.10.0", server: "2.9.10" },
      }),
    );
  });
});
