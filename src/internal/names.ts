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

/** Throws a validation error unless `name` is a valid stream or consumer name, naming what is wrong with it. */
export function assertName(field: string, name: unknown): asserts name is string {
  if (!isValidName(name)) {
    throw validationError(
      field,
      `${describe(name)} is not a valid name${nameProblem(name)} (1-${MAX_NAME_LENGTH} characters of A-Z, a-z, 0-9, _ and -)`,
    );
  }
}

/** What makes `name` invalid, as `: …` to follow "is not a valid name"; "" when it is not even a string. */
function nameProblem(name: unknown): string {
  if (typeof name !== "string") return "";
  if (name.length === 0) return ": it is empty";
  if (name.length > MAX_NAME_LENGTH) return `: it is ${name.length} characters long`;
  const bad = [...name].find((c) => !NAME.test(c));
  return bad === undefined
    ? ""
    : `: ${JSON.stringify(bad)} is not allowed${bad === "." ? " (a subject has dots, a name does not)" : ""}`;
}

/** Throws a validation error unless `subject` is a valid subject under `rules`. */
export function assertSubject(field: string, subject: unknown, rules?: SubjectRules): asserts subject is string {
  if (typeof subject === "string" && subject.length > MAX_SUBJECT_LENGTH) {
    throw validationError(field, `${describe(subject)} is longer than ${MAX_SUBJECT_LENGTH} characters`);
  }
  if (!isValidSubject(subject, rules)) {
    const wildcards = rules?.wildcards === true;
    const rule = wildcards
      ? "dot-separated tokens of A-Z, a-z, 0-9, _ and -; `*` as a whole token, `>` as the last"
      : "dot-separated tokens of A-Z, a-z, 0-9, _ and -, without wildcards";
    throw validationError(
      field,
      `${describe(subject)} is not a valid subject${subjectProblem(subject, wildcards)} (${rule})`,
    );
  }
}

/** What makes `subject` invalid, as `: …` to follow "is not a valid subject"; "" when nothing more can be said. */
function subjectProblem(subject: unknown, allowWildcards: boolean): string {
  if (typeof subject !== "string") return "";
  if (subject.length === 0) return ": it is empty";
  const tokens = subject.split(".");
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    const which = `token ${i + 1}`;
    if (token === "") return `: ${which} is empty (two dots in a row, or a dot at an end)`;
    if (TOKEN.test(token)) continue;
    if (token === "*" || token === ">") {
      if (!allowWildcards) return `: ${which} is the wildcard ${JSON.stringify(token)}, not allowed here`;
      return `: ${which} is ">", which may only be the last`;
    }
    const bad = [...token].find((c) => !TOKEN.test(c)) as string;
    return `: ${which} has ${JSON.stringify(bad)}`;
  }
  return "";
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
