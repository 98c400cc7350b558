/**
 * `@bufbuild/protovalidate` is an optional peer: a project that did not
 * install it loads windshift and works as usual, and asking for validation
 * fails at once with what to install. Run in a child process whose
 * `node_modules` lacks the package, as such a project's does.
 */
import { rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { afterAll, expect, it } from "vitest";
import { compileSources, root, startNode } from "../child.js";

const program = `
import { createMemoryEvents } from "./src/testing/index.js";
// Not a generated type of ours: those import buf.validate's descriptor from protovalidate.
import { StringValueSchema } from "@bufbuild/protobuf/wkt";

const report = (what, err) => console.log(JSON.stringify({ what, code: err?.code, message: err?.message }));
try {
  createMemoryEvents({ validate: true });
  report("create");
} catch (err) {
  report("create", err);
}
const events = createMemoryEvents();
await events.ensureStream("s", { subjects: ["s.>"] });
const published = await events.publish("s.a", StringValueSchema, { value: "no validation asked for" });
report("publish " + published.id);
await events.publish("s.a", StringValueSchema, { value: "checked" }, { validate: true }).then(
  () => report("publish with validate"),
  (err) => report("publish with validate", err),
);
await events.close();
`;

let dir: string | undefined;
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

it("without @bufbuild/protovalidate, windshift works and validate: true says what to install", async () => {
  dir = await compileSources("windshift-no-protovalidate-", ["src/testing/index.ts"], (file) => relative(root, file), {
    without: ["@bufbuild/protovalidate"],
  });
  await writeFile(join(dir, "program.mjs"), program);
  const child = startNode(["program.mjs"], { cwd: dir });
  expect(await child.exited, child.stderr()).toBe(0);
  const reports = child.lines.map((line) => JSON.parse(line) as { what: string; code?: string; message?: string });
  const install =
    "validate: validating messages needs @bufbuild/protovalidate, which is not installed: npm install @bufbuild/protovalidate";
  expect(reports).toEqual([
    { what: "create", code: "VALIDATION", message: install },
    { what: "publish 1" },
    { what: "publish with validate", code: "VALIDATION", message: install },
  ]);
});
