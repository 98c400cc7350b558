import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { headers as createHeaders, type Msg, type MsgHdrs, nuid } from "@nats-io/nats-core";
import { type Attributes, context, type Span, SpanKind, trace } from "@opentelemetry/api";
import { raceAbort } from "./abort.js";
import { assertSchema, encode } from "./codec.js";
import { ErrorCode, validationError, WindshiftError } from "./errors.js";
import { assertSubject, describe } from "./names.js";
import { toWindshiftError } from "./nats-errors.js";
import type { RequestFailures } from "./requester.js";
import { PUBLISH_RETRY, type RetryOptions, resolveRetry, withRetry } from "./retry.js";
import type { Runtime } from "./runtime.js";
import { atLeast, serverVersion } from "./server-version.js";
import { Attr, errorType, failSpan, secondsSince } from "./telemetry.js";
import { injectTraceContext } from "./trace-context.js";
import * as v from "./validate.js";
import { formatTime, Headers } from "./wire.js";

/** Options for one `publish` call. */
export interface PublishOptions {
  /**
   * A key that makes the publish idempotent: within the stream's
   * deduplication window a second event with the same key is not stored, and
   * the call reports `duplicate: true` with the first event's id. Sent as
   * `Nats-Msg-Id`. When `retry` is on and no key is given, one is generated so
   * that a retry can never store the event twice.
   * @default none
   */
  readonly idempotencyKey?: string;
  /**
   * Optimistic concurrency: store the event only if the stream's last event
   * has this id; otherwise the call fails with `WRONG_SEQUENCE`. Use `0` for
   * "the stream is empty".
   * @default no check
   */
  readonly expectedLastId?: number;
  /**
   * Optimistic concurrency per subject: store the event only if the last event
   * on this subject has this id (`0`: none yet); otherwise `WRONG_SEQUENCE`.
   * nats-server before 2.9.21 may let several writers win on replicated
   * streams; windshift warns once when connected to such a server.
   * @default no check
   */
  readonly expectedLastSubjectId?: number;
  /**
   * When the event occurred (`WS-Published-Time`).
   * @default now
   */
  readonly occurredAt?: Date;
  /**
   * How long to wait for the stream's acknowledgement per attempt.
   * @default 5_000
   */
  readonly timeoutMs?: number;
  /**
   * Retry transient failures (UNAVAILABLE, UNBOUND_SUBJECT, PUBLISH_TIMEOUT), never a wrong sequence
   * or a validation error. `true` uses backoff from 20 ms, doubling to 1 s with
   * jitter, for at most 20 s; an object is merged over that.
   * @default false
   */
  readonly retry?: RetryOptions | boolean;
  /**
   * Extra headers to send with the event. windshift's own headers cannot be
   * set here (use the options above). A `traceparent` given here is sent as is,
   * and then no trace context is injected.
   * @default none
   */
  readonly headers?: Readonly<Record<string, string>>;
  /** Cancels the call. The event may still have been stored. */
  readonly signal?: AbortSignal;
}

/** The outcome of a publish. */
export interface PublishedEvent {
  /** The event's id: its sequence number in the stream. */
  readonly id: number;
  /** The stream that stored the event. */
  readonly stream: string;
  /** Whether the idempotency key had been seen: the event was not stored again. */
  readonly duplicate: boolean;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const KNOWN = new Set([
  "idempotencyKey",
  "expectedLastId",
  "expectedLastSubjectId",
  "occurredAt",
  "timeoutMs",
  "retry",
  "headers",
  "signal",
]);
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
const WRONG_LAST_SEQUENCE = 10071;

interface PubAckJson {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code?: number; err_code?: number; description?: string };
}

/** Publishes one event; see `Events.publish`. */
export async function publish<Desc extends DescMessage>(
  rt: Runtime,
  subject: string,
  schema: Desc,
  data: MessageInitShape<Desc> | MessageShape<Desc>,
  options?: PublishOptions,
): Promise<PublishedEvent> {
  assertSubject("subject", subject, false);
  assertSchema("schema", schema);
  const o = v.optionsObject("options", options);
  v.rejectUnknown(o, KNOWN);
  const key = o.idempotencyKey;
  if (key !== undefined && (typeof key !== "string" || key.length === 0 || /[\r\n]/.test(key))) {
    throw validationError("idempotencyKey", `${describe(key)} is not a non-empty single-line string`);
  }
  const expectedLastId = v.integer("expectedLastId", o.expectedLastId, 0);
  const expectedLastSubjectId = v.integer("expectedLastSubjectId", o.expectedLastSubjectId, 0);
  if (expectedLastSubjectId !== undefined) warnAboutSubjectChecks(rt);
  const occurredAt = v.date("occurredAt", o.occurredAt) ?? new Date();
  const timeoutMs = v.durationMs("timeoutMs", o.timeoutMs, 1) ?? DEFAULT_TIMEOUT_MS;
  const retry = resolveRetry("retry", o.retry, undefined, PUBLISH_RETRY);
  const signal = v.signal("signal", o.signal);

  const payload = encode(schema, data);
  const maxPayload = rt.nc.info?.max_payload;
  if (maxPayload !== undefined && payload.length > maxPayload) {
    throw validationError(
      "data",
      `the encoded event is ${payload.length} bytes, more than the server's max payload of ${maxPayload}`,
    );
  }

  const h = createHeaders();
  const userTraceParent = copyUserHeaders(h, o.headers);
  h.set(Headers.DataType, schema.typeName);
  h.set(Headers.PublishedTime, formatTime(occurredAt));
  const msgId = (key as string | undefined) ?? (retry === undefined ? undefined : nuid.next());
  if (msgId !== undefined) h.set(Headers.MsgId, msgId);
  if (expectedLastId !== undefined) h.set(Headers.ExpectedLastSequence, String(expectedLastId));
  if (expectedLastSubjectId !== undefined) {
    h.set(Headers.ExpectedLastSubjectSequence, String(expectedLastSubjectId));
  }

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
    span = t.tracer.startSpan(`send ${subject}`, { kind: SpanKind.PRODUCER, attributes }, parent);
  }
  if (!userTraceParent) injectTraceContext(span === undefined ? parent : trace.setSpan(parent, span), h);

  const started = performance.now();
  let metricAttributes: Attributes | undefined;
  try {
    const published = await send(rt, subject, payload, h, {
      timeoutMs,
      retry,
      signal,
      onRetry: (err, n) => span?.addEvent("retry", { attempt: n, [Attr.ErrorType]: errorType(err) }),
    });
    if (span !== undefined) {
      span.setAttribute(Attr.MessageId, String(published.id));
      span.setAttribute(Attr.Stream, published.stream);
      if (published.duplicate) span.setAttribute(Attr.Duplicate, true);
    }
    if (t.metering) metricAttributes = t.publishAttributes(published.stream, undefined);
    return published;
  } catch (err) {
    if (span !== undefined) failSpan(span, err);
    if (t.metering) metricAttributes = t.publishAttributes(undefined, errorType(err));
    throw err;
  } finally {
    span?.end();
    if (metricAttributes !== undefined) {
      t.sent.add(1, metricAttributes);
      t.operationDuration.record(secondsSince(started), metricAttributes);
    }
  }
}

/** How {@link send} stores a message. */
export interface SendOptions {
  readonly timeoutMs: number;
  /** Retries of transient failures; needs a `Nats-Msg-Id` in the headers to be safe. */
  readonly retry: Required<RetryOptions> | undefined;
  readonly signal: AbortSignal | undefined;
  readonly onRetry?: (err: unknown, attempt: number) => void;
  /**
   * Whether UNBOUND_SUBJECT is retried too (a stream may be about to be
   * created); when not, it fails at once.
   * @default true
   */
  readonly retryUnbound?: boolean;
}

/**
 * Stores one ready-made message (payload and headers as given) in the stream
 * that captures `subject`, retrying transient failures (UNAVAILABLE,
 * UNBOUND_SUBJECT, PUBLISH_TIMEOUT) per `retry`. Used by `publish`, dead
 * letters and their replay.
 */
export async function send(
  rt: Runtime,
  subject: string,
  payload: Uint8Array,
  h: MsgHdrs,
  options: SendOptions,
): Promise<PublishedEvent> {
  const { timeoutMs, signal } = options;
  const failures = new PublishFailures(subject);
  const attempt = async (): Promise<PublishedEvent> => {
    let reply: Msg;
    try {
      reply = await rt.requester().request(subject, payload, h, timeoutMs, signal, failures);
    } catch (err) {
      if (err instanceof WindshiftError && err.code === ErrorCode.UnboundSubject) throw await whyUnanswered(rt, err);
      throw toWindshiftError(err, `publish to "${subject}"`);
    }
    return parseAck(reply, subject);
  };
  return raceAbort(
    withRetry(attempt, options.retry, {
      signal,
      shouldRetry: (err) =>
        err instanceof WindshiftError &&
        ((err.code === ErrorCode.UnboundSubject && options.retryUnbound !== false) ||
          err.code === ErrorCode.Unavailable ||
          err.code === ErrorCode.PublishTimeout),
      onRetry: (err, n) => {
        options.onRetry?.(err, n);
        rt.logger.debug("publish failed, retrying", { subject, attempt: n, error: String(err) });
      },
    }),
    signal,
  );
}

/**
 * Copies the user's extra headers after validating them; returns whether they
 * carry their own `traceparent`.
 */
function copyUserHeaders(h: MsgHdrs, value: unknown): boolean {
  if (value === undefined) return false;
  const given = v.optionsObject("headers", value);
  let traceParent = false;
  for (const [name, text] of Object.entries(given)) {
    if (!HEADER_NAME.test(name)) throw validationError("headers", `${describe(name)} is not a valid header name`);
    if (RESERVED.has(name.toLowerCase())) {
      throw validationError(`headers.${name}`, "is set by windshift; use the publish option for it");
    }
    if (typeof text !== "string" || /[\r\n]/.test(text)) {
      throw validationError(`headers.${name}`, `${describe(text)} is not a single-line string`);
    }
    if (name.toLowerCase() === "traceparent") traceParent = true;
    h.set(name, text);
  }
  if (traceParent) {
    const parent = Object.entries(given).find(([k]) => k.toLowerCase() === "traceparent")?.[1] as string;
    h.set(Headers.TraceParent, parent);
    const state = Object.entries(given).find(([k]) => k.toLowerCase() === "tracestate")?.[1];
    if (typeof state === "string") h.set(Headers.TraceState, state);
  }
  return traceParent;
}

/**
 * The names of the streams that capture `subject`. Throws when JetStream does
 * not answer in time or answers with an error.
 */
export async function streamsCapturing(rt: Runtime, subject: string, timeoutMs: number): Promise<string[]> {
  const reply = await rt.nc.request("$JS.API.STREAM.NAMES", JSON.stringify({ subject }), { timeout: timeoutMs });
  const answer = reply.json<{ streams?: string[] | null; error?: { description?: string } }>();
  if (answer.error !== undefined) {
    throw new WindshiftError(ErrorCode.Server, `looking up the streams of "${subject}": ${answer.error.description}`);
  }
  return answer.streams ?? [];
}

/**
 * Nobody answered a publish: either no stream captures the subject, or the
 * stream that does has no leader right now. Asks the JetStream API which.
 */
async function whyUnanswered(rt: Runtime, unbound: WindshiftError): Promise<WindshiftError> {
  const subject = unbound.details.subject as string;
  let stream: string | undefined;
  try {
    const names = await streamsCapturing(rt, subject, 1_000);
    if (names.length === 0) return unbound;
    stream = names[0];
  } catch {
    // An error (no meta leader, say) or no answer: JetStream cannot tell right now.
  }
  return new WindshiftError(
    ErrorCode.Unavailable,
    stream === undefined
      ? `publish to "${subject}": JetStream did not answer; the event was not stored`
      : `publish to "${subject}": stream "${stream}" did not answer (no leader?); the event was not stored`,
    { cause: unbound, details: { subject, ...(stream === undefined ? {} : { stream }) } },
  );
}

/** How a publish's transport failures are described (one object per publish, not four closures). */
class PublishFailures implements RequestFailures {
  readonly #subject: string;
  constructor(subject: string) {
    this.#subject = subject;
  }
  noResponders(): WindshiftError {
    const subject = this.#subject;
    return new WindshiftError(ErrorCode.UnboundSubject, `no stream captures subject "${subject}"`, {
      details: { subject },
    });
  }
  timeout(): WindshiftError {
    const subject = this.#subject;
    return new WindshiftError(
      ErrorCode.PublishTimeout,
      `publish to "${subject}" timed out: the event may or may not have been stored`,
      { details: { subject } },
    );
  }
  closed(): WindshiftError {
    return new WindshiftError(ErrorCode.Closed, `publish to "${this.#subject}": the connection is closed`);
  }
}

const warned = new WeakSet<object>();

/** Warns once per connection when per-subject checks are not safe on replicated streams. */
function warnAboutSubjectChecks(rt: Runtime): void {
  if (warned.has(rt.nc) || atLeast(serverVersion(rt.nc), [2, 9, 21])) return;
  warned.add(rt.nc);
  rt.logger.warn(
    "expectedLastSubjectId: nats-server before 2.9.21 may let several concurrent writers win on replicated (R>1) streams; it is safe on R1 streams",
    { server: rt.nc.info?.version },
  );
}

function parseAck(reply: Msg, subject: string): PublishedEvent {
  let ack: PubAckJson;
  try {
    ack = reply.json<PubAckJson>();
  } catch (err) {
    throw new WindshiftError(ErrorCode.Server, `publish to "${subject}": the reply is not a stream ack`, {
      cause: err,
    });
  }
  if (ack.error !== undefined) {
    const code = ack.error.err_code;
    const description = ack.error.description ?? "unknown error";
    if (code === WRONG_LAST_SEQUENCE) {
      throw new WindshiftError(ErrorCode.WrongSequence, `publish to "${subject}": ${description}`, {
        details: { subject, jsErrorCode: code },
      });
    }
    throw new WindshiftError(ErrorCode.Server, `publish to "${subject}": ${description}`, {
      details: { subject, jsErrorCode: code },
    });
  }
  if (typeof ack.stream !== "string" || typeof ack.seq !== "number") {
    throw new WindshiftError(ErrorCode.Server, `publish to "${subject}": the reply is not a stream ack`);
  }
  return { id: ack.seq, stream: ack.stream, duplicate: ack.duplicate === true };
}
