import { validationError } from "../errors.js";
import { optionsObject, unknownOption } from "./validate.js";

/**
 * The defaults of options type `O`: one entry for every option, its default
 * or `undefined` where it has none (or one computed from other options).
 * Typing a frozen constant with it makes the compiler refuse a missing or an
 * extra key, so the known options cannot drift from the interface.
 */
export type Defaults<O> = { readonly [K in keyof Required<O>]: Required<O>[K] | undefined };

/** Options as given, merged over their defaults, not validated yet. */
export type Merged<O> = { readonly [K in keyof Required<O>]: unknown };

/**
 * The one place options are merged over their defaults: checks that `input`
 * is an options object (or `undefined`), refuses keys that `defaults` does not
 * have (a typo, usually, for which the closest known option is suggested),
 * and returns every option with the given value, or the default where the
 * value is `undefined`. Each option is then validated by its reader.
 */
export function mergeOptions<O>(field: string, input: unknown, defaults: Defaults<O>): Merged<O> {
  if (isSchema(input)) {
    // A schema where options go: the call's positional schema argument of old, usually.
    const fix = Object.hasOwn(defaults, "schema") ? "; pass it as { schema }" : "";
    throw validationError(field, `is a message schema (${input.typeName}), not an options object${fix}`);
  }
  const given = optionsObject(field, input);
  const merged: Record<string, unknown> = { ...defaults };
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(defaults, key)) throw unknownOption(field, key, Object.keys(defaults));
    const value = given[key];
    if (value !== undefined) merged[key] = value;
  }
  return merged as Merged<O>;
}

/** Whether `value` looks like a protobuf-es message descriptor (a generated `…Schema`). */
function isSchema(value: unknown): value is { readonly typeName: string } {
  if (typeof value !== "object" || value === null) return false;
  const v = value as { kind?: unknown; typeName?: unknown };
  return v.kind === "message" && typeof v.typeName === "string";
}

/** Whether the caller gave option `key` (a value other than `undefined`). */
export function given(input: unknown, key: string): boolean {
  return typeof input === "object" && input !== null && (input as Record<string, unknown>)[key] !== undefined;
}
