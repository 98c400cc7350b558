/**
 * The command line: option declarations, parsing with `node:util`'s
 * `parseArgs`, and the usage errors that end in exit code 2.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** One `--option` of a command. */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  /** A one-letter alias (`-h`). */
  readonly short?: string;
  /** What the value is, for the help text (`FILE`, `N`). */
  readonly value?: string;
  /** One line for the help text. */
  readonly help: string;
}

/** Options by name (without the leading `--`). */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The parsed options of a command line: strings, booleans, or absent. */
export type OptionValues = Readonly<Record<string, string | boolean | undefined>>;

/** A command line that does not fit the commands: exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
  /** Always `"USAGE"`. */
  readonly code = "USAGE" as const;
}

/** The options every command takes: how to reach the server, and the output form. */
export const commonOptions: OptionSpecs = {
  server: {
    type: "string",
    value: "URL",
    help: "the NATS server (comma-separated for several); default $NATS_URL, else nats://127.0.0.1:4222",
  },
  creds: { type: "string", value: "FILE", help: "a credentials file (JWT and NKey seed)" },
  user: { type: "string", value: "USER", help: "user name (with --password)" },
  password: { type: "string", value: "PASSWORD", help: "password (with --user)" },
  token: { type: "string", value: "TOKEN", help: "an authentication token" },
  "tls-ca": { type: "string", value: "FILE", help: "a CA certificate (PEM) to verify the server's TLS certificate" },
  json: { type: "boolean", help: "print JSON for scripts instead of text" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

/** A command line split into its words, its options and its arguments. */
export interface CommandLine {
  /** The command's words: `["tail"]`, `["dlq", "replay"]`; empty when none was given. */
  readonly words: readonly string[];
  readonly values: OptionValues;
  /** The arguments after the command's words. */
  readonly positionals: readonly string[];
}

/** Re-raises `parseArgs`'s errors as one-line usage errors. */
function usage(err: unknown, command: string): never {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const option = /'(-[^' ]*)/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option !== undefined) {
    throw new UsageError(`unknown option ${option}${command === "" ? "" : ` for "${command}"`}`);
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option !== undefined) {
    throw new UsageError(message.includes("missing") ? `${option} needs a value` : `${option} takes no value`);
  }
  throw new UsageError(message.split(". ")[0] ?? message);
}

/**
 * Finds the command's words in `argv` (the first `depth(word)` positionals),
 * whatever options stand before them. Options are read loosely here (all of
 * `known`), and strictly by {@link parseCommand} once the command is known.
 */
export function findWords(argv: readonly string[], known: OptionSpecs, depth: (first: string) => number): CommandLine {
  const { values, positionals } = parse(argv, known, false, "");
  const first = positionals[0];
  const words = first === undefined ? [] : positionals.slice(0, depth(first));
  return { words, values, positionals: positionals.slice(words.length) };
}

/** The options and the arguments of `argv`, in order; `parseArgs`'s errors as usage errors. */
function parse(
  argv: readonly string[],
  options: OptionSpecs,
  strict: boolean,
  command: string,
): { values: OptionValues; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: [...argv], options, strict, allowPositionals: true, tokens: true });
    const positionals = parsed.tokens.flatMap((t) => (t.kind === "positional" ? [t.value] : []));
    return { values: parsed.values as OptionValues, positionals };
  } catch (err) {
    usage(err, command);
  }
}

/**
 * Parses `argv` strictly for a command whose words are `words` and whose
 * options are `options`: unknown options, missing values and a wrong number
 * of arguments are usage errors.
 */
export function parseCommand(
  argv: readonly string[],
  words: readonly string[],
  options: OptionSpecs,
  args: readonly string[],
): CommandLine {
  const command = words.join(" ");
  const parsed = parse(argv, options, true, command);
  const rest = parsed.positionals.slice(words.length);
  if (parsed.values.help !== true) {
    const missing = args.slice(rest.length);
    if (missing.length > 0)
      throw new UsageError(`${command}: missing ${missing.join(" ")} (see windshift ${command} --help)`);
    const extra = rest.slice(args.length);
    if (extra.length > 0) throw new UsageError(`${command}: unexpected argument "${extra[0]}"`);
  }
  return { words, values: parsed.values, positionals: rest };
}

/** The string value of `--name`, or undefined. */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

/** The string value of `--name`; a usage error when it is missing. */
export function requiredOption(values: OptionValues, name: string, command: string): string {
  const value = stringOption(values, name);
  if (value === undefined) throw new UsageError(`${command}: --${name} is required`);
  return value;
}

/** A whole number of at least `min` from `text`; a usage error naming `what` otherwise. */
export function integerArg(text: string, what: string, min = 1): number {
  if (!/^\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${what}: "${text}" is not a whole number of at least ${min}`);
  }
  return Number(text);
}

/** The whole-number value of `--name`, or undefined when it is not given. */
export function integerOption(values: OptionValues, name: string, min = 1): number | undefined {
  const text = stringOption(values, name);
  return text === undefined ? undefined : integerArg(text, `--${name}`, min);
}
