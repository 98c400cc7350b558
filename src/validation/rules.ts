/**
 * Checking messages against their `buf.validate` rules with
 * `@bufbuild/protovalidate`, an optional peer dependency: it is loaded only
 * when validation is asked for, so `import "windshift"` never loads it.
 *
 * @module
 */
import { createRequire } from "node:module";
import type { DescMessage, Message } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { ErrorCode, isWindshiftError, WindshiftError } from "../errors.js";
import * as v from "../internal/validate.js";

const PACKAGE = "@bufbuild/protovalidate";
/** How much of the violations an error message lists; `details.violations` has them all. */
const MAX_MESSAGE_LENGTH = 1_024;

/** One broken rule of a message, as protovalidate reports it. */
export interface Violation {
  /** The path of the field, e.g. `items[0].quantity`; `""` for a rule on the whole message. */
  readonly field: string;
  /** The path of the rule within the field's rules, e.g. `uint32.gt` or `cel[0]`; `""` for a CEL rule on the whole message. */
  readonly rule: string;
  /** The rule's id, e.g. `uint32.gt`, or the `id` a CEL rule was given. */
  readonly ruleId: string;
  /** What is wrong, in words. */
  readonly message: string;
  /** Whether the violation is about a map key rather than its value. */
  readonly forKey: boolean;
}

/**
 * Checks `message` against `schema`'s rules: `INVALID_MESSAGE` with the
 * violations when it breaks one, `VALIDATION` when the rules themselves
 * cannot be evaluated (a CEL expression that does not compile, say).
 */
export type RuleCheck = (schema: DescMessage, message: Message) => void;

/** What to install, and why: the error of `validate: true` without protovalidate. */
function notInstalled(field: string, cause?: unknown): WindshiftError {
  return new WindshiftError(
    ErrorCode.Validation,
    `${field}: validating messages needs ${PACKAGE}, which is not installed: npm install ${PACKAGE}`,
    { details: { field, package: PACKAGE }, ...(cause === undefined ? {} : { cause }) },
  );
}

/**
 * Fails at once with what to install unless protovalidate can be loaded: for
 * options checked when a client or processor is created, before any
 * message needs it.
 */
export function assertRulesAvailable(field: string): void {
  try {
    createRequire(import.meta.url).resolve(PACKAGE);
  } catch (err) {
    throw notInstalled(field, err);
  }
}

/**
 * Reads a `validate` option: `true` needs protovalidate, so it fails here,
 * when the option is given, rather than at the first message.
 */
export function readValidate(field: string, value: unknown): boolean | undefined {
  const validate = v.boolean(field, value);
  if (validate === true) assertRulesAvailable(field);
  return validate;
}

let loading: Promise<RuleCheck> | undefined;

/** Loads protovalidate (once per process) and makes the rule check; rejects with what to install when it is missing. */
export function loadRules(field: string): Promise<RuleCheck> {
  loading ??= import(PACKAGE).then(
    (protovalidate: typeof import("@bufbuild/protovalidate")) => {
      const validator = protovalidate.createValidator();
      return (schema, message) => {
        const result = validator.validate(schema, message);
        if (result.kind === "invalid") throw invalidMessage(schema.typeName, result.violations.map(toViolation));
        if (result.kind === "error") {
          throw new WindshiftError(
            ErrorCode.Validation,
            `the buf.validate rules of ${schema.typeName} cannot be evaluated: ${result.error.message}`,
            { cause: result.error, details: { type: schema.typeName } },
          );
        }
      };
    },
    (err: unknown) => {
      loading = undefined;
      throw notInstalled(field, err);
    },
  );
  return loading;
}

function toViolation(v: import("@bufbuild/protovalidate").Violation): Violation {
  return {
    field: pathToString(v.field),
    rule: pathToString(v.rule),
    ruleId: v.ruleId,
    message: v.message,
    forKey: v.forKey,
  };
}

/** The `INVALID_MESSAGE` error for a message of `type` that breaks its rules. */
export function invalidMessage(type: string, violations: readonly Violation[]): WindshiftError {
  const listed = violations.map((v) => `${v.field === "" ? "(message)" : v.field}: ${v.message} [${v.ruleId}]`);
  let text = `${type} breaks its buf.validate rules: ${listed.join("; ")}`;
  if (text.length > MAX_MESSAGE_LENGTH) text = `${text.slice(0, MAX_MESSAGE_LENGTH - 1)}…`;
  return new WindshiftError(ErrorCode.InvalidMessage, text, {
    details: { type, violations: Object.freeze(violations.map((v) => Object.freeze({ ...v }))) },
  });
}

/**
 * The violations an `INVALID_MESSAGE` error carries; `undefined` for any
 * other error.
 *
 * @example
 * ```ts
 * try {
 *   await events.publish("orders.created", OrderCreatedSchema, order, { validate: true });
 * } catch (err) {
 *   for (const v of violationsOf(err) ?? []) console.log(v.field, v.message);
 * }
 * ```
 */
export function violationsOf(error: unknown): readonly Violation[] | undefined {
  if (!isWindshiftError(error, ErrorCode.InvalidMessage)) return undefined;
  const violations = error.details.violations;
  return Array.isArray(violations) ? (violations as readonly Violation[]) : undefined;
}
