/**
 * Reading a topology file (`windshift.yaml`, or JSON), for the CLI and the
 * `windshift/topology` subpath. Kept out of the package's main entry: it
 * loads the `yaml` parser and the file system, which `import "windshift"`
 * must not.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { parseDocument } from "yaml";
import { ErrorCode, WindshiftError } from "../errors.js";
import { resolveTopology, type Topology } from "./topology.js";

/** A `VALIDATION` error about the file `file`, at a line and column when known. */
function fileError(file: string, message: string, at?: { line: number; column: number }, cause?: unknown) {
  const where = at === undefined ? file : `${file}:${at.line}:${at.column}`;
  return new WindshiftError(ErrorCode.Validation, `${where}: ${message}`, {
    ...(cause === undefined ? {} : { cause }),
    details: at === undefined ? { file } : { file, line: at.line, column: at.column },
  });
}

/** The line and column (from 1) of the character at `offset` in `text`. */
function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split("\n");
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

function parseYaml(file: string, text: string): unknown {
  // The core schema keeps timestamps as strings, as JSON has them; `from.time` is read below.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const [error] = doc.errors;
  if (error !== undefined) {
    const [start] = error.linePos ?? [];
    const reason = error.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "") ?? error.message;
    throw fileError(file, reason, start === undefined ? undefined : { line: start.line, column: start.col }, error);
  }
  return doc.toJS();
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const offset = /at position (\d+)/.exec(message)?.[1];
    const reason = message.replace(/ in JSON at position \d+.*$/, "").replace(/ \(line \d+ column \d+\)$/, "");
    throw fileError(file, reason, offset === undefined ? undefined : position(text, Number(offset)), err);
  }
}

/**
 * Turns the RFC 3339 strings of `from.time` (of consumers and of stream
 * sources) into the `Date`s the options take: a file has no other way to
 * write a time. Anything else is left for validation to judge.
 */
function readTimes(data: unknown): unknown {
  if (typeof data !== "object" || data === null) return data;
  const top = data as Record<string, unknown>;
  const withTime = (item: unknown): unknown => {
    if (typeof item !== "object" || item === null || Array.isArray(item)) return item;
    const from = (item as Record<string, unknown>).from;
    if (typeof from !== "object" || from === null) return item;
    const time = (from as Record<string, unknown>).time;
    if (typeof time !== "string" || !/^\d{4}-\d{2}-\d{2}T/.test(time) || Number.isNaN(Date.parse(time))) return item;
    return { ...item, from: { ...from, time: new Date(time) } };
  };
  const streams = Array.isArray(top.streams)
    ? top.streams.map((s: unknown) => {
        if (typeof s !== "object" || s === null || !Array.isArray((s as Record<string, unknown>).sources)) return s;
        return { ...s, sources: ((s as Record<string, unknown>).sources as unknown[]).map(withTime) };
      })
    : top.streams;
  const consumers = Array.isArray(top.consumers) ? top.consumers.map(withTime) : top.consumers;
  return {
    ...top,
    ...(streams === undefined ? {} : { streams }),
    ...(consumers === undefined ? {} : { consumers }),
  };
}

/**
 * Reads a topology from a YAML (`.yaml`, `.yml`) or JSON (`.json`) file and
 * validates it. Times (`from: { time: 2025-01-01T00:00:00Z }`) are written
 * as RFC 3339 strings. Every failure is a `VALIDATION` error whose message
 * starts with the file's name: `windshift.yaml:4:7: …` for a syntax error,
 * `windshift.yaml: streams[1].maxAgeMs: …` for a wrong option.
 *
 * @example
 * ```ts
 * const topology = await loadTopology("windshift.yaml");
 * await events.apply(topology, { prune: true });
 * ```
 */
export async function loadTopology(path: string): Promise<Topology> {
  const extension = extname(path).toLowerCase();
  if (![".yaml", ".yml", ".json"].includes(extension)) {
    throw fileError(path, `unknown file type "${extension}": expected .yaml, .yml or .json`);
  }
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : String(code ?? err);
    throw fileError(path, `cannot read the file: ${reason}`, undefined, err);
  }
  if (text.trim() === "") throw fileError(path, "the file is empty: declare streams and consumers");
  const data = readTimes(extension === ".json" ? parseJson(path, text) : parseYaml(path, text));
  resolveTopology(data, path);
  return data as Topology;
}
