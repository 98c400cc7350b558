/**
 * Running the `windshift` CLI as a user does: `node dist/cli/main.js …` in
 * a child process, against the test file's server. The program is compiled
 * from the sources into a scratch package laid out as the published one
 * (`dist/`, `package.json`, a link to `node_modules`), file by file with
 * `ts.transpileModule`, so a stale `dist/` never runs; tsc checks the types.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import ts from "typescript";
import { afterAll, beforeAll } from "vitest";
import { type TestEnv, useServer, waitFor } from "../helpers.js";

const run = promisify(execFile);

/** The repository's root. */
export const root = fileURLToPath(new URL("../..", import.meta.url));

/** The sources reachable from `entry` through relative imports. */
export async function reachableSources(entry: string): Promise<Map<string, string>> {
  const sources = new Map<string, string>();
  const todo = [resolve(root, entry)];
  for (let file = todo.pop(); file !== undefined; file = todo.pop()) {
    if (sources.has(file)) continue;
    const source = await readFile(file, "utf8");
    sources.set(file, source);
    for (const { fileName } of ts.preProcessFile(source, true, true).importedFiles) {
      if (fileName.startsWith(".")) todo.push(resolve(dirname(file), fileName.replace(/\.js$/, ".ts")));
    }
  }
  return sources;
}

/** Compiles the CLI into a scratch package; returns its directory. */
async function compileCli(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "windshift-cli-"));
  await symlink(join(root, "node_modules"), join(dir, "node_modules"), "dir");
  await copyFile(join(root, "package.json"), join(dir, "package.json"));
  for (const [file, source] of await reachableSources("src/cli/main.ts")) {
    const { outputText } = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    });
    const out = join(dir, "dist", relative(join(root, "src"), file).replace(/\.ts$/, ".js"));
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, outputText);
  }
  return dir;
}

/** What a finished CLI run printed, and how it exited. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A CLI process still running (`tail`, `top`): its output so far, line by line. */
export interface RunningCli {
  readonly proc: ChildProcess;
  /** Complete lines of stdout so far. */
  readonly lines: string[];
  readonly stderr: () => string;
  /** Resolves with the exit code (or the signal that killed it). */
  readonly exited: Promise<number | NodeJS.Signals | null>;
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
  /** `node_modules/.bin/buf build proto -o <scratch>/image.binpb`, once per file; returns the image's path. */
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
    const proc = spawn(process.execPath, [main(), ...args], {
      env: childEnv(),
      cwd: env.scratch,
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(proc);
    const lines: string[] = [];
    let partial = "";
    proc.stdout?.on("data", (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split("\n");
      partial = parts.pop() ?? "";
      lines.push(...parts);
    });
    let stderr = "";
    proc.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | NodeJS.Signals | null>((done) => {
      proc.once("exit", (code, signal) => done(signal ?? code));
    });
    return {
      proc,
      lines,
      stderr: () => stderr,
      exited,
      waitForLine: (pattern, what = String(pattern)) =>
        waitFor(
          () => {
            if (proc.exitCode !== null) throw new Error(`the CLI exited (${proc.exitCode}) before ${what}: ${stderr}`);
            return lines.find((l) => pattern.test(l));
          },
          { what },
        ),
    };
  };

  env.descriptors = () => {
    image ??= (async () => {
      const out = join(env.scratch, "image.binpb");
      await run(join(root, "node_modules", ".bin", "buf"), ["build", "proto", "-o", out], { cwd: root });
      return out;
    })();
    return image;
  };
  return env;
}

/** Parses every line of `text` as JSON. */
export function jsonLines(text: string): unknown[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as unknown);
}
