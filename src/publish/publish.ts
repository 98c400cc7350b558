import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { type Attributes, context, type Span, SpanKind, trace } from "@opentelemetry/api";
import { binaryHeaders, CloudEventHeaders } from "../cloudevents/options.js";
import { validationError } from "../errors.js";
import type { Clock } from "../internal/clock.js";
import { assertSchema, encode } from "../internal/codec.js";
import { assertSubject, describe } from "../internal/names.js";
import { type Defaults, type Merged, mergeOptions } from "../internal/options.js";
import { PUBLISH_RETRY, resolveRetry } from "../internal/retry.js";
import * as v from "../internal/validate.js";
import type { Runtime } from "../runtime.js";
import { Attr, errorType } from "../telemetry/attributes.js";
import { failSpan, secondsSince } from "../telemetry/spans.js";
import type { Telemetry } from "../telemetry/telemetry.js";
import { type HeaderList, injectTraceContext } from "../telemetry/trace-context.js";
import { loadRules, readValidate } from "../validation/rules.js";
import { formatTime, Headers } from "../wire.js";
import {
  type PublishedEvent,
  type PublishOptions,
  publishDefaults,
  readTransaction,
  type Transaction,
} from "./options.js";
import { send } from "./send.js";

const RESERVED = new Set(
  [
    Headers.DataType,
    Headers.PublishedTime,
    Headers.MsgId,
    Headers.ExpectedLastSequence,
    Headers.ExpectedLastSubjectSequence,
  ].map((h) => h.toLowerCase()),
);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Publishes one event; see `Events.publish`.
 *
 * Not an async function: everything up to the send runs at once (a failed
 * check rejects the promise, as it did), and only {@link settle} waits for the
 * stream's acknowledgement. A suspended async function keeps its whole frame
 * alive until the ack, and with thousands of publishes in flight that frame,
 * promoted out of the young generation, was much of the garbage collector's
 * work.
 */
export function publish<Desc extends DescMessage>(
  rt: Runtime,
  subject: string,
  schema: Desc,
  data: MessageInitShape<Desc> | MessageShape<Desc>,
  options?: PublishOptions,
): Promise<PublishedEvent> {
  try {
    const checked = check(rt, subject, schema, options);
    if (checked.validate !== true) return start(rt, subject, schema, data, checked, undefined);
    return loadRules("validate").then((rules) => start(rt, subject, schema, data, checked, rules));
  } catch (err) {
    return Promise.reject(err);
  }
}

/** A publish's options, checked. */
interface Checked {
  readonly o: Merged<PublishOptions> | Defaults<PublishOptions>;
  readonly key: string | undefined;
  readonly expectedLastId: number | undefined;
  readonly expectedLastSubjectId: number | undefined;
  readonly occurredAt: Date | undefined;
  readonly timeoutMs: number;
  readonly retry: ReturnType<typeof resolveRetry>;
  readonly signal: AbortSignal | undefined;
  readonly validate: boolean | undefined;
  readonly transaction: Transaction | undefined;
}

/** Checks the arguments and options of a publish; throws on the first that is wrong. */
function check(rt: Runtime, subject: string, schema: unknown, options: PublishOptions | undefined): Checked {
  assertSubject("subject", subject);
  assertSchema("schema", schema);
  const o = options === undefined ? publishDefaults : mergeOptions<PublishOptions>("options", options, publishDefaults);
  const key = o.idempotencyKey;
  if (key !== undefined && (typeof key !== "string" || key.length === 0 || /[\r\n]/.test(key))) {
    throw validationError("idempotencyKey", `${describe(key)} is not a non-empty single-line string`);
  }
  const expectedLastId = v.integer("expectedLastId", o.expectedLastId, 0);
  const expectedLastSubjectId = v.integer("expectedLastSubjectId", o.expectedLastSubjectId, 0);
  const occurredAt = v.date("occurredAt", o.occurredAt);
  const timeoutMs = v.durationMs("timeoutMs", o.timeoutMs, 1) as number;
  const retry = resolveRetry("retry", o.retry, undefined, PUBLISH_RETRY);
  const signal = v.signal("signal", o.signal);
  const validate = o.validate === undefined ? rt.validate : readValidate("validate", o.validate);
  const transaction = readTransaction(rt, o.transaction, retry !== undefined);
  return {
    o,
    key,
    expectedLastId,
    expectedLastSubjectId,
    occurredAt,
    timeoutMs,
    retry,
    signal,
    validate,
    transaction,
  };
}

/** Encodes the event, builds its headers and span, and sends it; throws what the checks before the send find. */
function start<Desc extends DescMessage>(
  rt: Runtime,
  subject: string,
  schema: Desc,
  data: MessageInitShape<Desc> | MessageShape<Desc>,
  checked: Checked,
  rules: Awaited<ReturnType<typeof loadRules>> | undefined,
): Promise<PublishedEvent> {
  const { o, expectedLastId, expectedLastSubjectId, occurredAt, timeoutMs, retry, signal, transaction } = checked;
  const key = checked.key;
  const payload = encode(schema, data, rules);
  const maxPayload = rt.engine.maxPayload();
  if (maxPayload !== undefined && payload.length > maxPayload) {
    throw validationError(
      "data",
      `the encoded event is ${payload.length} bytes, more than the server's max payload of ${maxPayload}`,
    );
  }

  const headers = userHeaders(o.headers);
  const userTraceParent = o.headers !== undefined && headers.some(([name]) => name.toLowerCase() === "traceparent");
  const time = occurredAt === undefined ? now(rt.clock) : formatTime(occurredAt);
  // Without a key, a retry after a lost acknowledgement could store the event twice.
  const msgId = (key as string | undefined) ?? (retry === undefined ? undefined : crypto.randomUUID());
  const ce = rt.cloudEvents;
  if (ce !== undefined) {
    if (o.headers !== undefined) refuseCloudEventHeaders(headers);
    headers.push(...binaryHeaders(ce, msgId ?? crypto.randomUUID(), schema.typeName, time));
  }
  if (maxPayload !== undefined && (o.headers !== undefined || ce !== undefined)) {
    // The server counts headers and payload together: a message over its max payload drops the connection.
    const size = headerBytes(headers) + (key === undefined ? 0 : Buffer.byteLength(key) + Headers.MsgId.length + 4);
    if (size + payload.length + HEADER_ROOM > maxPayload) {
      throw validationError(
        "headers",
        `the headers (${size} bytes) and the encoded event (${payload.length} bytes) are more than the server's max payload of ${maxPayload}`,
      );
    }
  }
  headers.push([Headers.DataType, schema.typeName], [Headers.PublishedTime, time]);

  const t = rt.telemetry;
  const parent = context.active();
  let span: Span | undefined;
  if (t.tracing()) {
    const attributes: Attributes = {
      ...t.connection(),
      [Attr.OperationType]: "send",
      [Attr.OperationName]: "publish",
      [Attr.Destination]: subject,
      [Attr.DataType]: schema.typeName,
    };
    if (t.recordBodySize) attributes[Attr.BodySize] = payload.length;
    span = t.startSpan(`send ${subject}`, { kind: SpanKind.PRODUCER, attributes }, parent);
  }
  if (!userTraceParent) injectTraceContext(span === undefined ? parent : trace.setSpan(parent, span), headers);

  const started = t.metering ? performance.now() : 0;
  let sending: Promise<PublishedEvent>;
  try {
    sending = send(
      rt,
      {
        subject,
        payload,
        headers,
        idempotencyKey: msgId,
        expectedLastId,
        expectedLastSubjectId,
      },
      retry === undefined || span === undefined
        ? { timeoutMs, retry, signal, transaction }
        : {
            timeoutMs,
            retry,
            signal,
            transaction,
            onRetry: (err, n) => span?.addEvent("retry", { attempt: n, [Attr.ErrorType]: errorType(err) }),
          },
    );
  } catch (err) {
    sending = Promise.reject(err);
  }
  // Without telemetry to record, the engine's promise is the publish's.
  return span === undefined && !t.metering ? sending : settle(t, sending, span, started);
}

/** Ends the publish's span and records its metrics once the send settles. */
async function settle(
  t: Telemetry,
  sending: Promise<PublishedEvent>,
  span: Span | undefined,
  started: number,
): Promise<PublishedEvent> {
  let published: PublishedEvent;
  try {
    published = await sending;
  } catch (err) {
    if (span !== undefined) {
      failSpan(span, err);
      span.end();
    }
    if (t.metering) record(t, t.publishAttributes(undefined, errorType(err)), started);
    throw err;
  }
  if (span !== undefined) {
    span.setAttribute(Attr.MessageId, String(published.id));
    span.setAttribute(Attr.Stream, published.stream);
    if (published.duplicate) span.setAttribute(Attr.Duplicate, true);
    span.end();
  }
  if (t.metering) record(t, t.publishAttributes(published.stream, undefined), started);
  return published;
}

/** Records a publish's metrics: it was sent, and how long it took since `started`. */
function record(t: Telemetry, attributes: Attributes, started: number): void {
  t.sent.add(1, attributes);
  t.operationDuration.record(secondsSince(started), attributes);
}

/** The last formatted time: publishes within the same millisecond share it. */
let lastTime = { ms: Number.NaN, text: "" };

/** `WS-Published-Time` for now on `clock`, formatted once per millisecond. */
function now(clock: Clock): string {
  const ms = clock.now();
  if (ms !== lastTime.ms) lastTime = { ms, text: formatTime(new Date(ms)) };
  return lastTime.text;
}

/**
 * Bytes windshift's own headers take at most (type, time, trace context,
 * expected ids), kept free of the max payload for them.
 */
const HEADER_ROOM = 512;

/** The size of `headers` as a NATS header block (`NATS/1.0`, one `name: value` line each). */
function headerBytes(headers: HeaderList): number {
  let size = 12;
  for (const [name, value] of headers) size += name.length + Buffer.byteLength(value) + 4;
  return size;
}

const CLOUD_EVENT_HEADERS: ReadonlySet<string> = new Set(Object.values(CloudEventHeaders));

/** With `cloudEvents` on, the attributes windshift writes cannot be given as headers too. */
function refuseCloudEventHeaders(headers: HeaderList): void {
  for (const [name] of headers) {
    if (CLOUD_EVENT_HEADERS.has(name.toLowerCase())) {
      throw validationError(`headers.${name}`, "is set by windshift when the client's cloudEvents option is on");
    }
  }
}

/**
 * The user's extra headers, validated; a `traceparent` among them is also
 * sent under windshift-go's name.
 */
function userHeaders(value: unknown): HeaderList {
  const list: HeaderList = [];
  if (value === undefined) return list;
  const given = v.optionsObject("headers", value);
  let traceParent: string | undefined;
  let traceState: string | undefined;
  for (const [name, text] of Object.entries(given)) {
    if (!HEADER_NAME.test(name)) throw validationError("headers", `${describe(name)} is not a valid header name`);
    if (RESERVED.has(name.toLowerCase())) {
      throw validationError(`headers.${name}`, "is set by windshift; use the publish option for it");
    }
    if (typeof text !== "string" || /[\r\n]/.test(text)) {
      throw validationError(`headers.${name}`, `${describe(text)} is not a single-line string`);
    }
    if (name.toLowerCase() === "traceparent") traceParent = text;
    if (name.toLowerCase() === "tracestate") traceState = text;
    list.push([name, text]);
  }
  if (traceParent !== undefined) {
    list.push([Headers.TraceParent, traceParent]);
    if (traceState !== undefined) list.push([Headers.TraceState, traceState]);
  }
  return list;
}
