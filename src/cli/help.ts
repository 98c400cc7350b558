/**
 * The help texts: `windshift --help` and `windshift <command> --help`.
 *
 * @module
 */

import { commonOptions, type OptionSpecs } from "./args.js";
import type { Command } from "./command.js";

function optionLines(options: OptionSpecs): string[] {
  const names = Object.entries(options).map(([name, spec]) => {
    const short = spec.short === undefined ? "    " : `-${spec.short}, `;
    return [`${short}--${name}${spec.value === undefined ? "" : ` ${spec.value}`}`, spec.help] as const;
  });
  const width = Math.max(...names.map(([n]) => n.length));
  return names.map(([n, help]) => `  ${n.padEnd(width)}  ${help}`);
}

/** `windshift tail STREAM [--subject SUBJECT] …`. */
export function usageLine(command: Command): string {
  const options = Object.entries(command.options).map(
    ([name, spec]) => `[--${name}${spec.value === undefined ? "" : ` ${spec.value}`}]`,
  );
  return ["windshift", ...command.words, ...command.args, ...options, "[--json]"].join(" ");
}

const EXIT_CODES = ["Exit codes: 0 done, 1 failed (one line on stderr: windshift: <message>), 2 wrong usage."];

/** The help of one command. */
export function commandHelp(command: Command): string {
  return [
    `Usage: ${usageLine(command)}`,
    "",
    command.summary[0]?.toUpperCase() + command.summary.slice(1),
    "",
    command.description,
    ...(Object.keys(command.options).length === 0 ? [] : ["", "Options:", ...optionLines(command.options)]),
    "",
    "Connection and output (every command):",
    ...optionLines(commonOptions),
    "",
    ...EXIT_CODES,
    "",
  ].join("\n");
}

/** The help of the CLI: its commands and common options. */
export function mainHelp(commands: readonly Command[], version: string): string {
  const names = commands.map((c) => [...c.words, ...c.args].join(" "));
  const width = Math.max(...names.map((n) => n.length));
  return [
    `windshift ${version}: operate windshift's event streams on NATS JetStream`,
    "",
    "Usage: windshift <command> [arguments] [options]",
    "",
    "Commands:",
    ...commands.map((c, i) => `  ${names[i]?.padEnd(width)}  ${c.summary}`),
    "",
    "Options (every command):",
    ...optionLines({ ...commonOptions, version: { type: "boolean", help: "print the version" } }),
    "",
    'Run "windshift <command> --help" for a command\'s options.',
    ...EXIT_CODES,
    "",
  ].join("\n");
}
