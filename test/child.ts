/**
 * Running windshift in a child process, as a user (or a crashing worker)
 * does: its sources compiled file by file with `ts.transpileModule` into a
 * scratch directory (so a stale `dist/` never runs; tsc checks the types),
 * and a child whose output is read line by line.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/** The repository's root. */
export const root = fileURLToPath(new URL("..", import.meta.url));

/** The sources reachable from `entries` (paths from the root) through relative imports. */
export async function reachableSources(...entries: string[]): Promise<Map<string, string>> {
  const sources = new Map<string, string>();
  const todo = entries.map((entry) => resolve(root, entry));
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

/**
 * A new scratch directory holding the sources reachable from `entries`,
 * compiled to JavaScript where `place` puts each (given its path, absolute),
 * and a link to this project's `node_modules` (or, with `without`, links to
 * each of its packages but those: a project that did not install them).
 */
export async function compileSources(
  prefix: string,
  entries: readonly string[],
  place: (file: string) => string,
  options: { readonly without?: readonly string[] } = {},
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  if (options.without === undefined) await symlink(join(root, "node_modules"), join(dir, "node_modules"), "dir");
  else await linkPackages(join(dir, "node_modules"), new Set(options.without));
  for (const [file, source] of await reachableSources(...entries)) {
    const { outputText } = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    });
    const out = join(dir, place(file).replace(/\.ts$/, ".js"));
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, outputText);
  }
  return dir;
}

/** Links each of this project's packages into `target` (scopes package by package), but those in `without`. */
async function linkPackages(target: string, without: ReadonlySet<string>): Promise<void> {
  const source = join(root, "node_modules");
  for (const entry of await readdir(source)) {
    const names = entry.startsWith("@") ? (await readdir(join(source, entry))).map((n) => `${entry}/${n}`) : [entry];
    for (const name of names) {
      if (without.has(name)) continue;
      await mkdir(dirname(join(target, name)), { recursive: true });
      await symlink(join(source, name), join(target, name), "dir");
    }
  }
}

/** A child process's output, line by line, and its exit. */
export interface Child {
  readonly proc: ChildProcess;
  /** Complete lines of stdout so far. */
  readonly lines: string[];
  /** What it wrote to stderr (the last 4,000 characters). */
  readonly stderr: () => string;
  /** Resolves with the exit code, or the signal that ended it. */
  readonly exited: Promise<number | NodeJS.Signals | null>;
}

/** Starts `node …args` in `cwd` with `env`, reading its output. */
export function startNode(args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Child {
  const proc = spawn(process.execPath, [...args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let partial = "";
  proc.stdout?.on("data", (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split("\n");
    partial = parts.pop() ?? "";
    lines.push(...parts);
  });
  let stderr = "";
  proc.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const exited = new Promise<number | NodeJS.Signals | null>((done) => {
    proc.once("exit", (code, signal) => done(signal ?? code));
  });
  return { proc, lines, stderr: () => stderr, exited };
}
