/**
 * The README's tutorial, followed as a new user follows it: its shell
 * commands run in an empty directory (with the packed tarball in place of the
 * registry's `windshift`), its files written as it shows them (the files of
 * `examples/first-service/`, which `npm run check:readme` keeps identical to
 * the README), then `npm run generate`, `npm run build` (the TypeScript npm
 * installs today) and a check with TypeScript 5.9, and `npm start` against a
 * real nats-server, twice: the second run finds everything stored already.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, it } from "vitest";
import { type NatsServer, startNatsServer } from "../src/testing/index.js";
import { root } from "./child.js";
import { packPackage } from "./pack.js";

const run = promisify(execFile);

const dirs: string[] = [];
let server: NatsServer | undefined;
afterAll(async () => {
  await server?.stop();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Runs `command` in `cwd`, failing with what it printed. */
async function step(what: string, command: string, args: readonly string[], cwd: string, env = process.env) {
  try {
    return await run(command, [...args], { cwd, env, maxBuffer: 16 * 1024 * 1024, timeout: 180_000 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`${what} failed:\n${e.stdout ?? ""}${e.stderr ?? String(err)}`);
  }
}

/** A shell command's words, as sh splits them: `a="b c"` is one word, `a=b c`. */
function words(command: string): string[] {
  return (command.match(/(?:[^\s"]+|"[^"]*")+/g) ?? []).map((word) => word.replace(/"/g, ""));
}

/** The tutorial in the README: its first shell block's commands, and the files it shows. */
async function tutorial(): Promise<{ commands: string[]; files: string[] }> {
  const readme = await readFile(join(root, "README.md"), "utf8");
  const section = readme.slice(
    readme.indexOf("## Your first service"),
    readme.indexOf("\n## ", readme.indexOf("## Your first service") + 1),
  );
  const shell = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
  const commands = shell
    .split("\n")
    .map((line) => line.replace(/\s+#.*$/, "").trim())
    .filter((line) => line !== "" && !line.startsWith("mkdir "));
  const files = [...section.matchAll(/^<!-- file: examples\/first-service\/(\S+) -->$/gm)].map((m) => m[1] as string);
  return { commands, files };
}

it("the README's first service installs, generates, compiles under TypeScript 5.9 and 7, and runs", {
  timeout: 420_000,
}, async () => {
  const { commands, files } = await tutorial();
  expect(commands[0]).toBe("npm init -y");
  expect(files).toEqual(["tsconfig.json", "buf.yaml", "buf.gen.yaml", "proto/shop/v1/orders.proto", "src/main.ts"]);

  const packDir = await mkdtemp(join(tmpdir(), "windshift-pack-"));
  const project = await mkdtemp(join(tmpdir(), "first-service-"));
  dirs.push(packDir, project);
  const { tarball } = await packPackage(packDir);

  for (const command of commands) {
    const [npm, ...args] = words(command).map((word) => (word === "windshift" ? tarball : word));
    expect(npm).toBe("npm");
    if (args[0] === "install") args.push("--no-audit", "--no-fund", "--prefer-offline");
    await step(command, "npm", args, project);
  }
  for (const file of files) {
    await mkdir(dirname(join(project, file)), { recursive: true });
    await copyFile(join(root, "examples", "first-service", file), join(project, file));
  }
  // What the commands made is the example's package.json, but for versions.
  const made = JSON.parse(await readFile(join(project, "package.json"), "utf8"));
  const example = JSON.parse(await readFile(join(root, "examples", "first-service", "package.json"), "utf8"));
  expect(made.type).toBe(example.type);
  expect(made.scripts).toMatchObject(example.scripts);
  expect(Object.keys(made.dependencies).sort()).toEqual(Object.keys(example.dependencies).sort());
  expect(Object.keys(made.devDependencies).sort()).toEqual(Object.keys(example.devDependencies).sort());

  await step("npm run generate", "npm", ["run", "generate"], project);
  await step("npm run build", "npm", ["run", "build"], project);
  const installed = await step("tsc --version", "npx", ["--no-install", "tsc", "--version"], project);
  const ts5 = join(root, "node_modules", "typescript", "bin", "tsc");
  const versions = [
    installed.stdout.trim(),
    (await step("tsc 5 --version", process.execPath, [ts5, "--version"], project)).stdout.trim(),
  ];
  await step("TypeScript 5.9", process.execPath, [ts5, "-p", ".", "--noEmit"], project);
  expect(versions.map((v) => v.replace(/^Version (\d+)\..*$/, "$1")).sort()).toEqual(["5", "7"]);

  server = await startNatsServer();
  const env = { ...process.env, NATS_URL: server.url };
  const first = await step("npm start", "npm", ["start", "--silent"], project, env);
  const lines = first.stdout.trim().split("\n");
  expect(lines.filter((l) => l.startsWith("published"))).toEqual([
    "published order-1 as event #1",
    "published order-2 as event #2",
    "published order-3 as event #3",
  ]);
  expect(lines.filter((l) => l.startsWith("billing")).sort()).toEqual([
    "billing order-1 for ada: 1250 cents (event #1)",
    "billing order-2 for grace: 2500 cents (event #2)",
    "billing order-3 for linus: 3750 cents (event #3)",
  ]);
  // Again: the idempotency keys store nothing twice, and the consumer has handled everything.
  const second = await step("npm start, again", "npm", ["start", "--silent"], project, env);
  expect(second.stdout.trim().split("\n")).toEqual([
    "published order-1 as event #1 (already stored)",
    "published order-2 as event #2 (already stored)",
    "published order-3 as event #3 (already stored)",
  ]);
});
