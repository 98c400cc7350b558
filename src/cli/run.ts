/**
 * The CLI's dispatcher: finds the command, parses its options, opens the
 * connection it needs, runs it, and turns the outcome into an exit code and
 * at most one line on stderr.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import type { NatsConnection } from "@nats-io/nats-core";
import { ErrorCode, isWindshiftError } from "../errors.js";
import type { Events } from "../index.js";
import { type CommandLine, commonOptions, findWords, type OptionSpecs, parseCommand, UsageError } from "./args.js";
import type { Command, CommandContext, Output } from "./command.js";
import { commands } from "./commands.js";
import { connectionSettings, openConnection, secretsOf } from "./connection.js";
import { commandHelp, mainHelp } from "./help.js";

/** Exit codes: done, failed, wrong usage. */
export const ExitCode = { Ok: 0, Error: 1, Usage: 2 } as const;

/** Where the CLI writes and what it reads from its environment. */
export interface CliIO {
  readonly stdout: NodeJS.WritableStream & { readonly isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
}

/** The package's version, from its package.json (two levels above this file, in `dist/cli/`). */
export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

/** Every option of every command, to find the command's words before knowing which it is. */
function allOptions(): OptionSpecs {
  const all: Record<string, OptionSpecs[string]> = { ...commonOptions, version: { type: "boolean", help: "" } };
  for (const c of commands) Object.assign(all, c.options);
  return all;
}

const GROUPS = new Set(commands.filter((c) => c.words.length > 1).map((c) => c.words[0]));

function findCommand(words: readonly string[]): Command {
  const found = commands.find((c) => c.words.join(" ") === words.join(" "));
  if (found !== undefined) return found;
  const [group] = words;
  if (group !== undefined && GROUPS.has(group)) {
    const subcommands = commands.filter((c) => c.words[0] === group).map((c) => c.words[1]);
    if (words.length === 1) throw new UsageError(`${group}: missing command (${subcommands.join(", ")})`);
    throw new UsageError(`unknown command "${words.join(" ")}" (${group} has ${subcommands.join(", ")})`);
  }
  throw new UsageError(`unknown command "${words.join(" ")}" (see windshift --help)`);
}

/** The error as one line, without the secrets given on the command line. */
function errorLine(err: unknown, secrets: readonly string[]): string {
  let message = err instanceof Error ? err.message || err.name : String(err);
  for (const secret of secrets) message = message.split(secret).join("***");
  return `windshift: ${message.replace(/\s*\n\s*/g, " ").trim()}\n`;
}

/** Whether `err` is what a command ends with when its signal aborts it. */
function endedBySignal(err: unknown): boolean {
  if (isWindshiftError(err, ErrorCode.Aborted) || isWindshiftError(err, ErrorCode.Closed)) return true;
  return err instanceof Error && err.name === "AbortError";
}

/**
 * Runs the CLI on `argv` (the arguments after the program) and returns the
 * exit code. Never throws; failures are written to `io.stderr` as one line.
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  let secrets: string[] = [];
  let nc: NatsConnection | undefined;
  let events: Events | undefined;
  const controller = new AbortController();
  let signals = 0;
  const onSignal = () => {
    // A second Ctrl-C ends at once, as a program that hangs on its way out should.
    if (++signals > 1) process.exit(130);
    controller.abort();
  };
  let command: Command | undefined;
  try {
    const found: CommandLine = findWords(argv, allOptions(), (first) => (GROUPS.has(first) ? 2 : 1));
    if (found.words.length === 0) {
      if (found.values.version === true) io.stdout.write(`${version()}\n`);
      else if (found.values.help === true) io.stdout.write(mainHelp(commands, version()));
      else throw new UsageError("missing command (see windshift --help)");
      return ExitCode.Ok;
    }
    command = findCommand(found.words);
    const line = parseCommand(argv, command.words, { ...commonOptions, ...command.options }, command.args);
    if (line.values.help === true) {
      io.stdout.write(commandHelp(command));
      return ExitCode.Ok;
    }
    const settings = connectionSettings(line.values, io.env);
    secrets = secretsOf(settings);
    const out: Output = {
      line: (text = "") => io.stdout.write(`${text}\n`),
      json: (value) => io.stdout.write(`${JSON.stringify(value)}\n`),
      write: (text) => io.stdout.write(text),
      isTTY: io.stdout.isTTY === true,
    };
    if (command.follows === true) {
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    }
    const ctx: CommandContext = {
      args: line.positionals,
      values: line.values,
      json: line.values.json === true,
      out,
      signal: controller.signal,
      events: async () => {
        if (events === undefined) {
          const { createEvents } = await import("../index.js");
          nc = await openConnection(settings);
          events = createEvents(nc);
        }
        return events;
      },
    };
    await command.run(ctx);
    return ExitCode.Ok;
  } catch (err) {
    if (command?.follows === true && controller.signal.aborted && endedBySignal(err)) return ExitCode.Ok;
    io.stderr.write(errorLine(err, secrets));
    return err instanceof UsageError ? ExitCode.Usage : ExitCode.Error;
  } finally {
    await events?.close().catch(() => {});
    await nc?.close().catch(() => {});
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
