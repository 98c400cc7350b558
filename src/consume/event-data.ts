/**
 * Reading an event's windshift headers and decoding its data: shared by
 * delivered events and events read back, so both behave alike.
 *
 * @module
 */

import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { ErrorCode, WindshiftError } from "../errors.js";
import { decode } from "../internal/codec.js";
import type { HeaderMap } from "../internal/headers.js";
import { Headers, parseTime } from "../wire.js";
import type { EventHeaders } from "./event.js";
import type { Decoder } from "./options.js";

const DATA_TYPE_KEY = Headers.DataType.toLowerCase();
const PUBLISHED_TIME_KEY = Headers.PublishedTime.toLowerCase();
const MSG_ID_KEY = Headers.MsgId.toLowerCase();

/** The full Protobuf type name in `WS-Data-Type`; `""` when missing. */
export function dataType(headers: HeaderMap): string {
  return headers.get(DATA_TYPE_KEY) ?? "";
}

/** The parsed windshift headers of `headers`. */
export function eventHeaders(headers: HeaderMap): EventHeaders {
  const time = headers.get(PUBLISHED_TIME_KEY);
  return Object.freeze({
    occurredAt: time === undefined ? undefined : parseTime(time),
    idempotencyKey: headers.get(MSG_ID_KEY),
    get: (name: string) => headers.get(name.toLowerCase()),
  });
}

/** What is decoded: an event's type, payload and id (for error details). */
export interface EncodedEvent {
  readonly type: string;
  readonly payload: Uint8Array;
  readonly id: number;
}

/** Decodes `event` as `schema`; `INVALID_DATA` when its type is another. */
export function decodeAs<Desc extends DescMessage>(schema: Desc, event: EncodedEvent): MessageShape<Desc> {
  const { type } = event;
  if (type !== schema.typeName) {
    throw new WindshiftError(
      ErrorCode.InvalidData,
      type === ""
        ? `the event has no WS-Data-Type header; expected ${schema.typeName}`
        : `the event is a ${type}, not a ${schema.typeName}`,
      { details: { expected: schema.typeName, actual: type, id: event.id } },
    );
  }
  return decode(schema, event.payload);
}

/**
 * Decodes `event` with `decoder` (a schema, or a registry looked up by its
 * type). Without one, a validation error whose message says where to give
 * it (`where`: "subscribe()", say).
 */
export function decodeWith(decoder: Decoder, event: EncodedEvent, where: string): unknown {
  if (decoder === undefined) {
    throw new WindshiftError(
      ErrorCode.Validation,
      `event.data needs a \`schema\` or \`registry\` on ${where}; use event.decode(Schema) or event.payload instead`,
    );
  }
  if ("schema" in decoder) return decodeAs(decoder.schema, event);
  const type = event.type;
  const schema = type === "" ? undefined : decoder.registry.getMessage(type);
  if (schema === undefined) {
    throw new WindshiftError(
      ErrorCode.InvalidData,
      type === "" ? "the event has no WS-Data-Type header" : `the registry does not know the type "${type}"`,
      { details: { type, id: event.id } },
    );
  }
  return decode(schema, event.payload);
}
