/**
 * CloudEvents attributes on NATS messages: the binding's `ce-` headers
 * (binary mode) and the JSON event format (structured mode), read and
 * written as the CloudEvents NATS protocol binding (spec main branch) says.
 *
 * @module
 */

import type { JsonValue } from "@bufbuild/protobuf";
import type { HeaderMap } from "../internal/headers.js";

/** The prefix of every binary-mode attribute header. */
export const CE_PREFIX = "ce-";

/** The `Content-Type` a structured-mode message carries (any `application/cloudevents…` but the batch format). */
const STRUCTURED = /^application\/cloudevents(\+[a-z0-9.-]+)?\s*(;|$)/i;

/** The attributes the specification names; anything else is an extension. */
const CORE = new Set(["specversion", "id", "source", "type", "time", "datacontenttype", "dataschema", "subject"]);

/** An extension attribute name: lower-case letters and digits. */
const EXTENSION_NAME = /^[a-z0-9]+$/;

/**
 * The CloudEvents context attributes of an event, as received: each value in
 * its canonical string form, percent-decoded.
 */
export interface CloudEventAttributes {
  /** How the event was carried: `ce-` headers, or a JSON envelope as the payload. */
  readonly mode: "binary" | "structured";
  /** `specversion`, e.g. `1.0`. */
  readonly specversion: string;
  /** `id`: unique per `source`. */
  readonly id: string;
  /** `source`: a URI-reference naming the producer. */
  readonly source: string;
  /** `type`: windshift writes the Protobuf full type name. */
  readonly type: string;
  /** `time`, RFC 3339, as sent; `event.headers.occurredAt` has it parsed. */
  readonly time: string | undefined;
  /** `datacontenttype`, e.g. `application/protobuf`. */
  readonly datacontenttype: string | undefined;
  /** `dataschema`: a URI of the data's schema. */
  readonly dataschema: string | undefined;
  /** `subject`: what the event is about, within `source`. */
  readonly subject: string | undefined;
  /** Every other attribute (extensions), by name, in canonical string form. */
  readonly extensions: Readonly<Record<string, string>>;
}

/**
 * A structured-mode event: its attributes, and its data as bytes (from
 * `data_base64`, or a string `data` of a non-JSON content type) or as JSON.
 */
export interface StructuredEvent {
  readonly attributes: CloudEventAttributes;
  readonly payload: Uint8Array;
  /** JSON `data` (content type JSON or none), to decode with `fromJson`. */
  readonly json: JsonValue | undefined;
}

const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Percent-encodes a header value as the binding requires: space, `"`, `%`
 * and everything outside printable ASCII (U+0021–U+007E), as upper-case
 * `%XY` per UTF-8 byte.
 */
export function encodeHeaderValue(value: string): string {
  let out = "";
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    if (code > 0x20 && code < 0x7f && code !== 0x22 && code !== 0x25) {
      out += ch;
      continue;
    }
    for (const byte of encoder.encode(ch)) out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * Decodes a header value: a double-quoted value is unquoted first (older
 * senders), then one round of percent-decoding, upper- or lower-case.
 * `undefined` when the bytes are not valid UTF-8 (an overlong `%C0%A0`, say),
 * which the binding says to reject.
 */
export function decodeHeaderValue(value: string): string | undefined {
  let text = value.trim();
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) {
    text = text.slice(1, -1).replace(/\\(.)/g, "$1");
  }
  if (!text.includes("%")) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; ) {
    if (text[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 3;
      continue;
    }
    const ch = String.fromCodePoint(text.codePointAt(i) as number);
    bytes.push(...encoder.encode(ch));
    i += ch.length;
  }
  try {
    return utf8.decode(new Uint8Array(bytes));
  } catch {
    return undefined;
  }
}

/** Whether `contentType` (a `Content-Type` header) marks a structured-mode message. */
export function isStructured(contentType: string | undefined): boolean {
  return contentType !== undefined && STRUCTURED.test(contentType.trim());
}

/**
 * The binary-mode attributes in `headers`; `undefined` when there is no
 * `ce-specversion` or a required attribute (`id`, `source`, `type`) is
 * missing or not valid UTF-8. `datacontenttype` falls back to
 * `Content-Type`, as sdk-go reads it.
 */
export function readBinary(headers: HeaderMap): CloudEventAttributes | undefined {
  const get = (name: string): string | undefined => {
    const raw = headers.get(CE_PREFIX + name);
    return raw === undefined ? undefined : decodeHeaderValue(raw);
  };
  const specversion = get("specversion");
  const id = get("id");
  const source = get("source");
  const type = get("type");
  if (!specversion || !id || !source || !type) return undefined;
  const extensions: Record<string, string> = {};
  for (const [name, raw] of headers) {
    if (!name.startsWith(CE_PREFIX)) continue;
    const attribute = name.slice(CE_PREFIX.length);
    if (CORE.has(attribute)) continue;
    const value = decodeHeaderValue(raw);
    if (value !== undefined) extensions[attribute] = value;
  }
  const contentType = get("datacontenttype") ?? headers.get("content-type");
  return Object.freeze({
    mode: "binary",
    specversion,
    id,
    source,
    type,
    time: get("time"),
    datacontenttype: contentType,
    dataschema: get("dataschema"),
    subject: get("subject"),
    extensions: Object.freeze(extensions),
  });
}

/**
 * Reads a structured-mode payload (the JSON event format); `undefined` when
 * it is not a JSON object with `specversion`, `id`, `source` and `type`
 * strings.
 */
export function readStructured(payload: Uint8Array): StructuredEvent | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(payload));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const o = parsed as Record<string, unknown>;
  const text = (name: string): string | undefined => (typeof o[name] === "string" ? (o[name] as string) : undefined);
  const specversion = text("specversion");
  const id = text("id");
  const source = text("source");
  const type = text("type");
  if (!specversion || !id || !source || !type) return undefined;
  const extensions: Record<string, string> = {};
  for (const [name, value] of Object.entries(o)) {
    if (CORE.has(name) || name === "data" || name === "data_base64" || !EXTENSION_NAME.test(name)) continue;
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      extensions[name] = String(value);
    }
  }
  const datacontenttype = text("datacontenttype");
  const attributes: CloudEventAttributes = Object.freeze({
    mode: "structured",
    specversion,
    id,
    source,
    type,
    time: text("time"),
    datacontenttype,
    dataschema: text("dataschema"),
    subject: text("subject"),
    extensions: Object.freeze(extensions),
  });
  const base64 = text("data_base64");
  if (base64 !== undefined) {
    const bytes = Buffer.from(base64, "base64");
    return { attributes, payload: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), json: undefined };
  }
  if (!("data" in o) || o.data === null) return { attributes, payload: new Uint8Array(0), json: undefined };
  const data = o.data as JsonValue;
  if (typeof data === "string" && !isJson(datacontenttype)) {
    // A string of a non-JSON content type is the data itself (the JSON format's rule).
    return { attributes, payload: encoder.encode(data), json: undefined };
  }
  return { attributes, payload: encoder.encode(JSON.stringify(data)), json: data };
}

/** Whether a content type is JSON (`application/json`, `text/json`, `…+json`), or absent (JSON by default). */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const media = (contentType.split(";")[0] as string).trim().toLowerCase();
  return media === "application/json" || media === "text/json" || media.endsWith("+json");
}
