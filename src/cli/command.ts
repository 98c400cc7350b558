/**
 * What a CLI command is, and what it is given when it runs.
 *
 * @module
 */

import type { Events } from "../index.js";
import type { OptionSpecs, OptionValues } from "./args.js";

/** Where a command prints. */
export interface Output {
  /** Writes one line (a newline is added). */
  line(text?: string): void;
  /** Writes `value` as one line of JSON. */
  json(value: unknown): void;
  /** Writes text as it is. */
  write(text: string): void;
  /** Whether standard output is a terminal (`top` redraws in place then). */
  readonly isTTY: boolean;
}

/** What a running command gets. */
export interface CommandContext {
  /** The arguments after the command's words, as many as the command declares. */
  readonly args: readonly string[];
  /** The command's options, and the common ones. */
  readonly values: OptionValues;
  /** `--json` was given. */
  readonly json: boolean;
  readonly out: Output;
  /**
   * Aborted by Ctrl-C (SIGINT) or SIGTERM, for the commands that follow a
   * stream (`follows`); the others end at once on a signal.
   */
  readonly signal: AbortSignal;
  /** The client over the connection, opened on the first call. */
  events(): Promise<Events>;
}

/** One command of the CLI. */
export interface Command {
  /** Its words: `["tail"]`, `["dlq", "replay"]`. */
  readonly words: readonly string[];
  /** Its arguments' names, in order, all required: `["STREAM", "ID"]`. */
  readonly args: readonly string[];
  /** One line for the command list. */
  readonly summary: string;
  /** Paragraphs for its own help, after the usage line. */
  readonly description: string;
  /** Its own options (the common ones are added). */
  readonly options: OptionSpecs;
  /** Whether it runs until Ctrl-C, which then ends it cleanly with exit code 0. */
  readonly follows?: boolean;
  run(ctx: CommandContext): Promise<void>;
}
