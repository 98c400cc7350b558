/**
 * The `cloudEvents` client option: binary-mode CloudEvents headers on every
 * publish.
 *
 * @module
 */

import { validationError } from "../errors.js";
import { describe } from "../internal/names.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import { CE_PREFIX, encodeHeaderValue } from "./attributes.js";

/**
 * Makes every event a CloudEvent in binary mode: `ce-specversion`, `ce-id`,
 * `ce-source`, `ce-type`, `ce-time`, `ce-datacontenttype` and (when given)
 * `ce-dataschema` headers are added to each publish, beside windshift's own.
 */
export interface CloudEventsOptions {
  /**
   * The `source` attribute: a URI-reference naming the producer, such as
   * `/orders-service` or `https://example.com/orders`. Required.
   */
  readonly source: string;
  /**
   * The `dataschema` attribute: an absolute URI of the events' schema (a
   * Buf Schema Registry module, say).
   * @default none (no `ce-dataschema` header)
   */
  readonly dataschema?: string;
}

/** The defaults of {@link CloudEventsOptions}. */
export const cloudEventsDefaults: Defaults<CloudEventsOptions> = Object.freeze({
  source: undefined,
  dataschema: undefined,
});

/** The validated `cloudEvents` option: its header values, percent-encoded once. */
export interface CloudEventsSettings {
  readonly source: string;
  readonly dataschema: string | undefined;
}

/** The CloudEvents spec version windshift writes. */
export const SPEC_VERSION = "1.0";

/** The `datacontenttype` of a windshift event: its payload is Protobuf binary. */
export const PROTOBUF_CONTENT_TYPE = "application/protobuf";

/** The header names windshift writes when `cloudEvents` is on. */
export const CloudEventHeaders = {
  SpecVersion: `${CE_PREFIX}specversion`,
  Id: `${CE_PREFIX}id`,
  Source: `${CE_PREFIX}source`,
  Type: `${CE_PREFIX}type`,
  Time: `${CE_PREFIX}time`,
  DataContentType: `${CE_PREFIX}datacontenttype`,
  DataSchema: `${CE_PREFIX}dataschema`,
} as const;

/** RFC 3986 characters of a URI-reference, and `%` followed by two hex digits. */
const URI_REFERENCE = /^(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
/** The longest `source` or `dataschema`: headers must leave room for the event in the server's max payload. */
const MAX_LENGTH = 1_024;

/** Validates the `cloudEvents` option (`undefined`: off). */
export function resolveCloudEvents(value: unknown): CloudEventsSettings | undefined {
  if (value === undefined) return undefined;
  const o = mergeOptions<CloudEventsOptions>("cloudEvents", value, cloudEventsDefaults);
  const source = o.source;
  if (typeof source !== "string" || source.length > MAX_LENGTH || !URI_REFERENCE.test(source)) {
    throw validationError(
      "cloudEvents.source",
      `${describe(source)} is not a non-empty URI-reference of at most ${MAX_LENGTH} characters`,
    );
  }
  const dataschema = o.dataschema;
  if (
    dataschema !== undefined &&
    (typeof dataschema !== "string" ||
      dataschema.length > MAX_LENGTH ||
      !URI_REFERENCE.test(dataschema) ||
      !SCHEME.test(dataschema))
  ) {
    throw validationError(
      "cloudEvents.dataschema",
      `${describe(dataschema)} is not an absolute URI of at most ${MAX_LENGTH} characters`,
    );
  }
  return Object.freeze({
    source: encodeHeaderValue(source),
    dataschema: dataschema === undefined ? undefined : encodeHeaderValue(dataschema),
  });
}

/**
 * The binary-mode headers of one event: `id` (the idempotency key, or a
 * generated UUID), `type` (the Protobuf full name) and `time` (the same RFC
 * 3339 text as `WS-Published-Time`).
 */
export function binaryHeaders(
  settings: CloudEventsSettings,
  id: string,
  type: string,
  time: string,
): [name: string, value: string][] {
  const headers: [string, string][] = [
    [CloudEventHeaders.SpecVersion, SPEC_VERSION],
    [CloudEventHeaders.Id, encodeHeaderValue(id)],
    [CloudEventHeaders.Source, settings.source],
    [CloudEventHeaders.Type, encodeHeaderValue(type)],
    [CloudEventHeaders.Time, time],
    [CloudEventHeaders.DataContentType, PROTOBUF_CONTENT_TYPE],
  ];
  if (settings.dataschema !== undefined) headers.push([CloudEventHeaders.DataSchema, settings.dataschema]);
  return headers;
}
