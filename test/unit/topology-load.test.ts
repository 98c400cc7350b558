import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTopology } from "../../src/topology/index.js";
import { windshiftError } from "../helpers.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "windshift-topology-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe("loadTopology", () => {
  it("reads YAML and JSON, with consumer start times as Dates", async () => {
    const yaml = await file(
      "windshift.yaml",
      [
        "streams:",
        "  - name: orders",
        '    subjects: ["orders.>"]',
        "    maxAgeMs: 604800000",
        "consumers:",
        "  - stream: orders",
        "    name: audit",
        "    from: { time: 2026-01-02T03:04:05Z }",
      ].join("\n"),
    );
    expect(await loadTopology(yaml)).toEqual({
      streams: [{ name: "orders", subjects: ["orders.>"], maxAgeMs: 604_800_000 }],
      consumers: [{ stream: "orders", name: "audit", from: { time: new Date("2026-01-02T03:04:05Z") } }],
    });
    const json = await file("topology.json", JSON.stringify({ streams: [{ name: "a", subjects: ["a.>"] }] }));
    expect(await loadTopology(json)).toEqual({ streams: [{ name: "a", subjects: ["a.>"] }] });
  });

  it("names the file, and the line or the field, in every error", async () => {
    const message = async (path: string) => {
      const err = await windshiftError(loadTopology(path));
      expect(err.code).toBe("VALIDATION");
      expect(err.details.file).toBe(path);
      return err.message;
    };
    const badField = await file("field.yaml", "streams:\n  - name: a\n    subjects: [a.>]\n    maxAgeMs: -1\n");
    expect(await message(badField)).toBe(
      `${badField}: streams[0].maxAgeMs: -1 is not a whole number of milliseconds between 0 and 9000000000000`,
    );
    const badYaml = await file("syntax.yaml", "streams:\n  - name: a\n  name: b\n    x: [\n");
    expect(await message(badYaml)).toMatch(new RegExp(`^${badYaml.replace(/[.]/g, "\\.")}:\\d+:\\d+: `));
    const badJson = await file("syntax.json", '{"streams": [}');
    // Node names the position for some JSON errors only.
    expect(await message(badJson)).toMatch(
      new RegExp(`^${badJson.replace(/[.]/g, "\\.")}(:1:\\d+)?: Unexpected token`),
    );
    expect(await message(await file("empty.yaml", "  \n"))).toContain("the file is empty");
    expect(await message(join(dir, "missing.yaml"))).toContain("cannot read the file: no such file");
    expect(await message(await file("topology.toml", ""))).toContain('unknown file type ".toml"');
  });
});
