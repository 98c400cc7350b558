import { headers as createHeaders, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/nats-core";
import { ErrorCode, WindshiftError } from "../../errors.js";
import type { Logger } from "../../internal/logger.js";
import { Headers } from "../../wire.js";
import type { Appended, AppendOptions, OutgoingEvent, RawHeaders } from "../engine.js";
import { limitRefused, unboundSubject, wrongSequence } from "../errors.js";
import { apiError, type Denial, JsErrorCode, parseLastSequence, permissionDenied, toWindshiftError } from "./errors.js";
import type { Requester, RequestFailures } from "./requester.js";
import { atLeast, serverVersion } from "./server-version.js";

interface PubAckJson {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code?: number; err_code?: number; description?: string };
}

/** What an append needs from the engine. */
export interface AppendContext {
  readonly nc: NatsConnection;
  readonly logger: Logger;
  /** Request/reply for publishes, bounded by `maxPublishesInFlight`. */
  requester(): Requester;
  /** Names of the streams capturing `subject`, asked of the JetStream API. */
  streamsCapturing(subject: string, timeoutMs: number): Promise<string[]>;
}

/**
 * Publishes one event as a JetStream message and reads the stream's
 * acknowledgement. Not an async function: what waits for the ack is the
 * request's promise and one reaction, not a suspended frame per publish.
 */
export function append(ctx: AppendContext, event: OutgoingEvent, options: AppendOptions): Promise<Appended> {
  const { subject } = event;
  let reply: Promise<Msg>;
  try {
    if (event.expectedLastSubjectId !== undefined) warnAboutSubjectChecks(ctx);
    reply = ctx.requester().request(subject, event.payload, {
      headers: toMsgHeaders(event),
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      failures: new PublishFailures(subject),
    });
  } catch (err) {
    return failed(ctx, err, subject);
  }
  return reply.then(
    (msg) => parseAck(msg, event),
    (err: unknown) => failed(ctx, err, subject),
  );
}

/** A publish that got no acknowledgement: the error to reject with. */
async function failed(ctx: AppendContext, err: unknown, subject: string): Promise<never> {
  if (err instanceof WindshiftError && err.code === ErrorCode.UnboundSubject) throw await whyUnanswered(ctx, err);
  throw toWindshiftError(err, `publish to "${subject}"`);
}

/**
 * The headers of the last publish without a key or checks, with the list they
 * were built from. Most publishes carry only the type and the time (the same
 * text within a millisecond): they share one nats.js headers object instead
 * of building one each, which an in-flight publish kept alive until its ack
 * (nats.js only reads it, to encode it into the message).
 */
let shared: { list: RawHeaders; hdrs: MsgHdrs } | undefined;

function toMsgHeaders(event: OutgoingEvent): MsgHdrs {
  const plain =
    event.idempotencyKey === undefined &&
    event.expectedLastId === undefined &&
    event.expectedLastSubjectId === undefined;
  if (plain && shared !== undefined && sameHeaders(shared.list, event.headers)) return shared.hdrs;
  const h = createHeaders();
  for (const [name, value] of event.headers) h.append(name, value);
  if (event.idempotencyKey !== undefined) h.set(Headers.MsgId, event.idempotencyKey);
  if (event.expectedLastId !== undefined) h.set(Headers.ExpectedLastSequence, String(event.expectedLastId));
  if (event.expectedLastSubjectId !== undefined) {
    h.set(Headers.ExpectedLastSubjectSequence, String(event.expectedLastSubjectId));
  }
  // A copy: the list is the caller's.
  if (plain) shared = { list: event.headers.map(([name, value]) => [name, value] as const), hdrs: h };
  return h;
}

/** Whether two header lists have the same names and values in the same order. */
function sameHeaders(a: RawHeaders, b: RawHeaders): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as RawHeaders[number];
    const y = b[i] as RawHeaders[number];
    if (x[0] !== y[0] || x[1] !== y[1]) return false;
  }
  return true;
}

/**
 * Nobody answered a publish: either no stream captures the subject, or the
 * stream that does has no leader right now. Asks the JetStream API which.
 */
async function whyUnanswered(ctx: AppendContext, unbound: WindshiftError): Promise<WindshiftError> {
  const subject = unbound.details.subject as string;
  let stream: string | undefined;
  try {
    const names = await ctx.streamsCapturing(subject, 1_000);
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

function parseAck(reply: Msg, event: OutgoingEvent): Appended {
  const { subject } = event;
  let ack: PubAckJson;
  try {
    ack = reply.json<PubAckJson>();
  } catch (err) {
    throw new WindshiftError(ErrorCode.Server, `publish to "${subject}": the reply is not a stream ack`, {
      cause: err,
    });
  }
  if (ack.error !== undefined) throw refusal(event, ack.error, ack.stream);
  if (typeof ack.stream !== "string" || typeof ack.seq !== "number") {
    throw new WindshiftError(ErrorCode.Server, `publish to "${subject}": the reply is not a stream ack`);
  }
  return { id: ack.seq, stream: ack.stream, duplicate: ack.duplicate === true };
}

/**
 * The stream's refusal of an event, worded as the memory engine words it: a
 * failed expected-id check names both ids (the server's text carries the
 * actual one; when it cannot be read, the text is kept), a limit names
 * itself and the fix.
 */
function refusal(
  event: OutgoingEvent,
  error: NonNullable<PubAckJson["error"]>,
  stream: string | undefined,
): WindshiftError {
  const { subject } = event;
  const code = error.err_code;
  const description = error.description ?? "";
  const extra = { details: { jsErrorCode: code } };
  const named = typeof stream === "string" && stream !== "" ? stream : undefined;
  if (code === JsErrorCode.WrongLastSequence) {
    const actual = parseLastSequence(description);
    if (actual !== undefined) {
      const { expectedLastId, expectedLastSubjectId } = event;
      return wrongSequence({ subject, stream: named, expectedLastId, expectedLastSubjectId }, actual, extra);
    }
  }
  if ((code === JsErrorCode.StreamLimit || code === JsErrorCode.MessageTooLarge) && description !== "") {
    return limitRefused(subject, named, description, extra);
  }
  const mapped = apiError(`publish to "${subject}"`, error);
  return new WindshiftError(mapped.code, mapped.message, { details: { subject, ...mapped.details } });
}

/** How a publish's transport failures are described (one object per publish, not four closures). */
class PublishFailures implements RequestFailures {
  readonly #subject: string;
  constructor(subject: string) {
    this.#subject = subject;
  }
  noResponders(): WindshiftError {
    return unboundSubject(this.#subject);
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
  denied(denial: Denial, cause: unknown): WindshiftError {
    // A refused inbox subscription leaves the publish itself allowed: it may have been stored.
    const outcome =
      denial.operation === "publish"
        ? "the event was not stored"
        : "no acknowledgement can come back: the event may or may not have been stored";
    return permissionDenied(`publish to "${this.#subject}"`, denial, cause, outcome);
  }
}

const warned = new WeakSet<object>();

/** Warns once per connection when per-subject checks are not safe on replicated streams. */
function warnAboutSubjectChecks(ctx: AppendContext): void {
  if (warned.has(ctx.nc) || atLeast(serverVersion(ctx.nc), [2, 9, 21])) return;
  warned.add(ctx.nc);
  ctx.logger.warn(
    "expectedLastSubjectId: nats-server before 2.9.21 may let several concurrent writers win on replicated (R>1) streams; it is safe on R1 streams",
    { server: ctx.nc.info?.version },
  );
}
