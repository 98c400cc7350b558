import {
  create,
  type DescMessage,
  fromBinary,
  isMessage,
  type Message,
  type MessageInitShape,
  type MessageShape,
  type Registry,
  toBinary,
} from "@bufbuild/protobuf";
import { ErrorCode, validationError, WindshiftError } from "../errors.js";
import { describe } from "./names.js";

/** Throws a validation error unless `schema` is a generated message schema. */
export function assertSchema(field: string, schema: unknown): asserts schema is DescMessage {
  const s = schema as { kind?: unknown; typeName?: unknown } | null | undefined;
  if (typeof s !== "object" || s === null || s.kind !== "message" || typeof s.typeName !== "string") {
    throw validationError(field, `${describe(schema)} is not a message schema (pass e.g. OrderCreatedSchema)`);
  }
}

/** Throws a validation error unless `registry` looks like a protobuf-es registry. */
export function assertRegistry(field: string, registry: unknown): asserts registry is Registry {
  const r = registry as { getMessage?: unknown } | null | undefined;
  if (typeof r !== "object" || r === null || typeof r.getMessage !== "function") {
    throw validationError(field, `${describe(registry)} is not a registry (use createRegistry(...))`);
  }
}

/**
 * Encodes `data` (an initializer or a message of `schema`) to Protobuf binary.
 * Missing data is a validation error; a message of another type, or data the
 * schema cannot encode, is an invalid-data error. With `check`, the message
 * is checked (against its rules) before it is encoded.
 */
export function encode<Desc extends DescMessage>(
  schema: Desc,
  data: MessageInitShape<Desc> | MessageShape<Desc>,
  check?: (schema: Desc, message: MessageShape<Desc>) => void,
): Uint8Array {
  if (data === null || data === undefined) throw validationError("data", "is required");
  if (typeof data !== "object" || Array.isArray(data)) {
    throw validationError("data", `${describe(data)} is not a message or message initializer`);
  }
  if (isMessage(data) && !isMessage(data, schema)) {
    throw new WindshiftError(
      ErrorCode.InvalidData,
      `data is a ${(data as Message).$typeName} message, not ${schema.typeName}`,
      { details: { expected: schema.typeName, actual: (data as Message).$typeName } },
    );
  }
  let message: MessageShape<Desc>;
  try {
    message = create(schema, data);
  } catch (err) {
    throw cannotEncode(schema, err);
  }
  // Outside the try: a broken rule is its own error, not an encoding failure.
  check?.(schema, message);
  try {
    return toBinary(schema, message);
  } catch (err) {
    throw cannotEncode(schema, err);
  }
}

function cannotEncode(schema: DescMessage, err: unknown): WindshiftError {
  return new WindshiftError(ErrorCode.InvalidData, `cannot encode ${schema.typeName}: ${errorText(err)}`, {
    cause: err,
    details: { type: schema.typeName },
  });
}

/** Decodes `payload` as `schema`; failures are invalid-data errors. */
export function decode<Desc extends DescMessage>(schema: Desc, payload: Uint8Array): MessageShape<Desc> {
  try {
    return fromBinary(schema, payload);
  } catch (err) {
    throw new WindshiftError(ErrorCode.InvalidData, `cannot decode ${schema.typeName}: ${errorText(err)}`, {
      cause: err,
      details: { type: schema.typeName },
    });
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
