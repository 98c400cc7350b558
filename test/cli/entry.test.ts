/**
 * The CLI is its own entry: `import "windshift"` reaches none of its code,
 * nor the YAML parser, `node:util`'s argument parser or the NATS transport.
 */
import { readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { reachableSources, root } from "./support.js";

/** The package names and built-in modules that `file`'s source imports. */
function packagesOf(source: string): string[] {
  return ts
    .preProcessFile(source, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((name) => !name.startsWith("."));
}

describe("the windshift CLI's entry", () => {
  it.each(["src/index.ts", "src/testing/index.ts"])(
    "%s reaches no CLI code, yaml, parseArgs or transport",
    async (entry) => {
      const files = [...(await reachableSources(entry)).entries()].map(([file, source]) => ({
        file: relative(root, file),
        packages: packagesOf(source),
        parseArgs: source.includes("parseArgs"),
      }));
      expect(files.length).toBeGreaterThan(20);
      expect(files.filter((f) => f.file.startsWith("src/cli/") || f.file === "src/topology/load.ts")).toEqual([]);
      const loaded = new Set(files.flatMap((f) => f.packages));
      for (const forbidden of ["yaml", "@nats-io/transport-node"]) {
        expect(loaded.has(forbidden), `${entry} reaches ${forbidden}`).toBe(false);
      }
      expect(files.filter((f) => f.parseArgs).map((f) => f.file)).toEqual([]);
    },
  );

  it("is the package's bin, with a shebang, and no export (the topology loader is a subpath of its own)", async () => {
    const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8"));
    expect(pkg.bin).toEqual({ windshift: "./dist/cli/main.js" });
    expect(Object.keys(pkg.exports)).toEqual([".", "./testing", "./topology", "./postgres", "./package.json"]);
    expect(pkg.dependencies).toHaveProperty("yaml");
    expect(pkg.dependencies).toHaveProperty("@nats-io/transport-node");
    expect(await readFile(join(root, "src/cli/main.ts"), "utf8")).toMatch(/^#!\/usr\/bin\/env node\n/);
  });
});
