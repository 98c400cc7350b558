import { validationError } from "../errors.js";

/** The longest stream or consumer name the server accepts. */
const MAX_NAME_LENGTH = 255;
const NAME = /^[A-Za-z0-9_-]+$/;
const TOKEN = /^[A-Za-z0-9_-]+$/;

/**
 * Whether `name` is a valid stream or consumer name: one or more of
 * `A-Z a-z 0-9 _ -`, at most 255 characters (the rule windshift-go uses).
 */
export function isValidName(name: unknown): name is string {
  return typeof name === "string" && name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

/**
 * The longest subject accepted: a publish's control line (subject, reply
 * subject and sizes) must fit the server's 4 KiB limit, or the server drops
 * the connection.
 */
export const MAX_SUBJECT_LENGTH = 2_048;

/** Options for {@link isValidSubject}. */
export interface SubjectRules {
  /**
   * Allow wildcards: `*` as a whole token, `>` as the last token (as in a
   * stream's or consumer's subjects; never in a publish).
   * @default false
   */
  readonly wildcards?: boolean;
}

/**
 * Whether `subject` is a valid subject: dot-separated, non-empty tokens of
 * `A-Z a-z 0-9 _ -`, at most 2,048 characters; with `wildcards`, a token may
 * be `*`, and the last token may be `>`.
 *
 * @example
 * ```ts
 * isValidSubject("orders.created"); // true
 * isValidSubject("orders.>"); // false: a wildcard
 * isValidSubject("orders.>", { wildcards: true }); // true
 * ```
 */
export function isValidSubject(subject: unknown, rules?: SubjectRules): subject is string {
  if (typeof subject !== "string" || subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH) return false;
  // Services publish to a handful of subjects over and over: remember the good ones.
  if (validSubjects.has(subject)) return true;
  const allowWildcards = rules?.wildcards === true;
  if (!checkSubject(subject, allowWildcards)) return false;
  if (!allowWildcards) {
    if (validSubjects.size >= MAX_REMEMBERED) validSubjects.clear();
    validSubjects.add(subject);
  }
  return true;
}

/** Literal subjects found valid lately (a wildcard-free subject is valid either way). */
const validSubjects = new Set<string>();
const MAX_REMEMBERED = 1_024;

function checkSubject(subject: string, allowWildcards: boolean): boolean {
  const tokens = subject.split(".");
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    if (TOKEN.test(token)) continue;
    if (!allowWildcards) return false;
    if (token === "*") continue;
    if (token === ">" && i === tokens.length - 1) continue;
    return false;
  }
  return true;
}

/** Throws a validation error unless `name` is a valid stream or consumer name. */
export function assertName(field: string, name: unknown): asserts name is string {
  if (!isValidName(name)) {
    throw validationError(
      field,
      `${describe(name)} is not a valid name (1-${MAX_NAME_LENGTH} characters of A-Z, a-z, 0-9, _ and -)`,
    );
  }
}

/** Throws a validation error unless `subject` is a valid subject under `rules`. */
export function assertSubject(field: string, subject: unknown, rules?: SubjectRules): asserts subject is string {
  if (typeof subject === "string" && subject.length > MAX_SUBJECT_LENGTH) {
    throw validationError(field, `${describe(subject)} is longer than ${MAX_SUBJECT_LENGTH} characters`);
  }
  if (!isValidSubject(subject, rules)) {
    const rule = rules?.wildcards
      ? "dot-separated tokens of A-Z, a-z, 0-9, _ and -; `*` as a whole token, `>` as the last"
      : "dot-separated tokens of A-Z, a-z, 0-9, _ and -, without wildcards";
    throw validationError(field, `${describe(subject)} is not a valid subject (${rule})`);
  }
}

/** Renders a bad value for an error message without dumping huge strings. */
export function describe(value: unknown): string {
  if (typeof value === "string") {
    return value.length > 80 ? `"${value.slice(0, 77)}..." (${value.length} characters)` : `"${value}"`;
  }
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  return typeof value;
}
