import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { findNatsServer } from "../../src/testing/index.js";
import { validationAt } from "./expect-error.js";

describe("findNatsServer", () => {
  const saved = process.env.NATS_SERVER_BIN;
  let dir: string;
  let runnable: string;
  let plain: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "windshift-bin-"));
    runnable = join(dir, "nats-server");
    plain = join(dir, "not-executable");
    await writeFile(runnable, "#!/bin/sh\n");
    await chmod(runnable, 0o755);
    await writeFile(plain, "");
    await chmod(plain, 0o644);
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.NATS_SERVER_BIN;
    else process.env.NATS_SERVER_BIN = saved;
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("takes NATS_SERVER_BIN when it is an executable file", () => {
    process.env.NATS_SERVER_BIN = runnable;
    expect(findNatsServer()).toBe(runnable);
  });

  it.each<[string, () => string, string]>([
    ["a path that does not exist", () => join(dir, "missing"), "does not exist"],
    ["a directory", () => dir, "is a directory, not the nats-server binary"],
    ["a file that is not executable", () => plain, "is not executable (chmod +x it)"],
  ])("fails on a NATS_SERVER_BIN that is %s, naming it, instead of looking elsewhere", (_, path, problem) => {
    process.env.NATS_SERVER_BIN = path();
    expect(() => findNatsServer()).toThrow(validationAt("NATS_SERVER_BIN"));
    expect(() => findNatsServer()).toThrow(
      `NATS_SERVER_BIN: "${path()}" ${problem}: set it to the path of a nats-server binary, or unset it to use the one on PATH`,
    );
  });

  it("fails on a binary option that is not an executable file", () => {
    process.env.NATS_SERVER_BIN = runnable;
    expect(() => findNatsServer(plain)).toThrow(
      `binary: "${plain}" is not executable (chmod +x it): pass the path of a nats-server binary`,
    );
    expect(findNatsServer(runnable)).toBe(runnable);
  });

  it("looks on PATH when NATS_SERVER_BIN is empty", () => {
    process.env.NATS_SERVER_BIN = "";
    expect(findNatsServer()).toMatch(/nats-server$/);
  });
});
