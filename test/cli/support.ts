/**
 * Running the `windshift` CLI as a user does: `node dist/cli/main.js …` in
 * a child process, against the test file's server. The program is compiled
 * from the sources into a scratch package laid out as the published one
 * (`dist/`, `package.json`, a link to `node_modules`), file by file with
 * `ts.transpileModule`, so a stale `dist/` never runs; tsc checks the types.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { create, type DescFile, toBinary } from "@bufbuild/protobuf";
import { type FileDescriptorProto, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll } from "vitest";
import { file_windshift_demo_v1_orders } from "../../gen/windshift/demo/v1/orders_pb.js";
import { file_windshift_test_v1_events } from "../../gen/windshift/test/v1/events_pb.js";
import { type Child, compileSources, root, startNode } from "../child.js";
import { type TestEnv, useServer, waitFor } from "../helpers.js";

const run = promisify(execFile);

export { reachableSources, root } from "../child.js";

/** Compiles the CLI into a scratch package laid out as the published one; returns its directory. */
async function compileCli(): Promise<string> {
  const dir = await compileSources("windshift-cli-", ["src/cli/main.ts"], (file) =>
    join("dist", relative(join(root, "src"), file)),
  );
  await copyFile(join(root, "package.json"), join(dir, "package.json"));
  return dir;
}

/** What a finished CLI run printed, and how it exited. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A CLI process still running (`tail`, `top`): its output so far, line by line. */
export interface RunningCli extends Child {
  /** Waits until a line matches `pattern`, and returns it. */
  waitForLine(pattern: RegExp, what?: string): Promise<string>;
}

/** The test file's server and a CLI compiled for it. */
export interface CliEnv extends TestEnv {
  /** Runs `windshift …args` to its end (NATS_URL is the file's server). */
  cli(args: readonly string[], options?: { env?: NodeJS.ProcessEnv; cwd?: string }): Promise<CliResult>;
  /** Starts `windshift …args` and leaves it running. */
  start(args: readonly string[]): RunningCli;
  /** A scratch directory for the file's own files (removed after it). */
  scratch: string;
  /**
   * `<scratch>/image.binpb`, a `FileDescriptorSet` of the demo's and the
   * tests' `.proto` files with their imports, as `buf build -o` writes one
   * (without source info); written once per file, returns its path.
   */
  descriptors(): Promise<string>;
}

/** Starts a server and compiles the CLI before the file's tests; stops and removes everything after. */
export function useCli(): CliEnv {
  const env = useServer() as CliEnv;
  let dir: string | undefined;
  let image: Promise<string> | undefined;
  const children: ChildProcess[] = [];
  const main = () => join(dir as string, "dist", "cli", "main.js");
  const childEnv = (extra: NodeJS.ProcessEnv = {}) => ({ ...process.env, NATS_URL: env.server.url, ...extra });

  beforeAll(async () => {
    dir = await compileCli();
    env.scratch = await mkdtemp(join(tmpdir(), "windshift-cli-files-"));
  });
  afterAll(async () => {
    for (const proc of children) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    if (env.scratch !== undefined) await rm(env.scratch, { recursive: true, force: true });
  });

  env.cli = async (args, options = {}) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [main(), ...args], {
        env: childEnv(options.env),
        cwd: options.cwd ?? env.scratch,
        timeout: 20_000,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: unknown; stdout?: string; stderr?: string };
      if (typeof e.code !== "number") throw err;
      return { code: e.code, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
    }
  };

  env.start = (args) => {
    const child = startNode([main(), ...args], { env: childEnv(), cwd: env.scratch });
    const { proc, lines, stderr } = child;
    children.push(proc);
    return {
      ...child,
      waitForLine: (pattern, what = String(pattern)) =>
        waitFor(
          () => {
            if (proc.exitCode !== null)
              throw new Error(`the CLI exited (${proc.exitCode}) before ${what}: ${stderr()}`);
            return lines.find((l) => pattern.test(l));
          },
          { what },
        ),
    };
  };

  env.descriptors = () => {
    image ??= (async () => {
      const out = join(env.scratch, "image.binpb");
      await writeFile(out, descriptorSet(file_windshift_demo_v1_orders, file_windshift_test_v1_events));
      return out;
    })();
    return image;
  };
  return env;
}

/**
 * `files` and everything they import, dependencies first, as a binary
 * `FileDescriptorSet`: built from the descriptors embedded in the generated
 * code, so no Protobuf compiler is needed (ours import buf.validate, which
 * `buf build proto` cannot resolve offline; see docs/validation.md).
 */
function descriptorSet(...files: DescFile[]): Uint8Array {
  const protos = new Map<string, FileDescriptorProto>();
  const add = (file: DescFile): void => {
    if (protos.has(file.name)) return;
    for (const dependency of file.dependencies) add(dependency);
    protos.set(file.name, file.proto);
  };
  for (const file of files) add(file);
  return toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [...protos.values()] }));
}

/** Parses every line of `text` as JSON. */
export function jsonLines(text: string): unknown[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as unknown);
}
