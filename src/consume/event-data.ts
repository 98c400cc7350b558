/**
 * Reading an event's windshift headers and decoding its data: shared by
 * delivered events and events read back, so both behave alike.
 *
 * @module
 */

import { type DescMessage, fromJson, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { type CloudEventAttributes, isStructured, readBinary, readStructured } from "../cloudevents/attributes.js";
import { ErrorCode, WindshiftError } from "../errors.js";
import { decode } from "../internal/codec.js";
import type { HeaderMap } from "../internal/headers.js";
import { Headers, parseTime } from "../wire.js";
import type { EventHeaders } from "./event.js";
import type { Decoder } from "./options.js";

const DATA_TYPE_KEY = Headers.DataType.toLowerCase();
const PUBLISHED_TIME_KEY = Headers.PublishedTime.toLowerCase();
const MSG_ID_KEY = Headers.MsgId.toLowerCase();
const CE_SPEC_VERSION_KEY = "ce-specversion";
const CONTENT_TYPE_KEY = "content-type";

/**
 * What an event carries, whichever way it was published: by windshift (its
 * `WS-*` headers, perhaps with `ce-*` ones), by another CloudEvents producer
 * in binary mode (`ce-*` headers only), or in structured mode (a JSON
 * envelope as the payload).
 */
export interface EventView {
  /** The full type name: `WS-Data-Type`, else the CloudEvent's `type`; `""` when neither. */
  readonly type: string;
  /**
   * The bytes to decode: the message's payload, or the data inside a
   * structured CloudEvent (its `data_base64`, or its `data` as JSON text).
   */
  readonly payload: Uint8Array;
  /** A structured CloudEvent's JSON `data`, decoded with `fromJson`. */
  readonly json: JsonValue | undefined;
  /** The CloudEvents attributes; `undefined` when the event is not a CloudEvent. */
  readonly cloudEvent: CloudEventAttributes | undefined;
}

/** Reads an event's type, data and CloudEvents attributes from its headers and payload. */
export function readEvent(headers: HeaderMap, payload: Uint8Array): EventView {
  const wsType = headers.get(DATA_TYPE_KEY);
  const contentType = headers.get(CONTENT_TYPE_KEY);
  if (
    isStructured(contentType) ||
    (wsType === undefined && !headers.has(CE_SPEC_VERSION_KEY) && looksLikeJson(payload))
  ) {
    // Structured mode: marked by its content type (the binding), or, as sdk-go
    // sends it, a JSON envelope with no headers that say otherwise.
    const structured = readStructured(payload);
    if (structured !== undefined) {
      const { attributes } = structured;
      return {
        type: wsType ?? attributes.type,
        payload: structured.payload,
        json: structured.json,
        cloudEvent: attributes,
      };
    }
  }
  const cloudEvent = headers.has(CE_SPEC_VERSION_KEY) ? readBinary(headers) : undefined;
  return { type: wsType ?? cloudEvent?.type ?? "", payload, json: undefined, cloudEvent };
}

/** Whether `payload` starts (after white space) with `{`: worth trying as a structured CloudEvent. */
function looksLikeJson(payload: Uint8Array): boolean {
  for (const byte of payload) {
    if (byte === 0x7b) return true;
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return false;
  }
  return false;
}

/**
 * The parsed headers of an event: windshift's own first, the CloudEvent's
 * `time` and `id` for an event that has no `WS-*` ones (from another
 * CloudEvents producer).
 */
export function eventHeaders(headers: HeaderMap, view: EventView): EventHeaders {
  const ce = view.cloudEvent;
  const windshift = headers.has(DATA_TYPE_KEY);
  const time = headers.get(PUBLISHED_TIME_KEY) ?? (windshift ? undefined : ce?.time);
  return Object.freeze({
    occurredAt: time === undefined ? undefined : parseTime(time),
    idempotencyKey: headers.get(MSG_ID_KEY) ?? (windshift ? undefined : ce?.id),
    cloudEvent: ce,
    get: (name: string) => headers.get(name.toLowerCase()),
  });
}

/** What is decoded: an event's type, payload (or JSON data) and id (for error details). */
export interface EncodedEvent {
  readonly type: string;
  readonly payload: Uint8Array;
  readonly id: number;
  /** JSON data of a structured CloudEvent, decoded instead of `payload`. */
  readonly json?: JsonValue | undefined;
}

/** Decodes `event`'s data as `schema`: its JSON data when it has some, else its Protobuf payload. */
function decodeData<Desc extends DescMessage>(schema: Desc, event: EncodedEvent): MessageShape<Desc> {
  if (event.json === undefined) return decode(schema, event.payload);
  try {
    return fromJson(schema, event.json, { ignoreUnknownFields: true });
  } catch (err) {
    throw new WindshiftError(
      ErrorCode.InvalidData,
      `cannot decode ${schema.typeName} from JSON: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err, details: { type: schema.typeName, id: event.id } },
    );
  }
}

/** Decodes `event` as `schema`; `INVALID_DATA` when its type is another. */
export function decodeAs<Desc extends DescMessage>(schema: Desc, event: EncodedEvent): MessageShape<Desc> {
  const { type } = event;
  if (type !== schema.typeName) {
    throw new WindshiftError(
      ErrorCode.InvalidData,
      type === ""
        ? `the event has no WS-Data-Type header nor CloudEvents type; expected ${schema.typeName}`
        : `the event is a ${type}, not a ${schema.typeName}`,
      { details: { expected: schema.typeName, actual: type, id: event.id } },
    );
  }
  return decodeData(schema, event);
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
      type === ""
        ? "the event has no WS-Data-Type header nor CloudEvents type"
        : `the registry does not know the type "${type}"`,
      { details: { type, id: event.id } },
    );
  }
  return decodeData(schema, event);
}
