import type { EventImpl } from "../consume/delivered-event.js";
import type { Appended } from "../engines/engine.js";
import { ErrorCode, WindshiftError } from "../errors.js";
import { PUBLISH_RETRY } from "../internal/retry.js";
import { send } from "../publish/send.js";
import type { Runtime } from "../runtime.js";
import type { HeaderList } from "../telemetry/trace-context.js";
import { type Violation, violationsOf } from "../validation/rules.js";
import { Headers } from "../wire.js";
import type { DeadLetterReason } from "./failure-policy.js";

const MAX_ERROR_LENGTH = 1_024;
const MAX_VIOLATIONS_LENGTH = 2_048;
/** Headers that were instructions for the original publish, not facts about the event. */
const PUBLISH_DIRECTIVES = /^nats-(expected-|rollup$|ttl$)/i;
/** The `WS-Dead-Letter-*` headers, lower-case. */
export const DEAD_LETTER_PREFIX = "ws-dead-letter-";
const MSG_ID = Headers.MsgId.toLowerCase();

/** A one-line, bounded description of why the handler failed. */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const line = text.replace(/[\r\n]+/g, " ");
  return line.length > MAX_ERROR_LENGTH ? `${line.slice(0, MAX_ERROR_LENGTH - 1)}…` : line;
}

/** `violations` as a JSON array of at most {@link MAX_VIOLATIONS_LENGTH} characters: those that fit. */
function violationsJson(violations: readonly Violation[]): string {
  let json = "[]";
  for (const violation of violations) {
    const item = JSON.stringify(violation);
    const next = json === "[]" ? `[${item}]` : `${json.slice(0, -1)},${item}]`;
    if (next.length > MAX_VIOLATIONS_LENGTH) break;
    json = next;
  }
  return json;
}

/**
 * The headers of an event's dead letter: the event's own, as delivered, plus
 * the `WS-Dead-Letter-*` facts. Its `Nats-Msg-Id` moves to
 * `WS-Dead-Letter-Msg-Id`, and the publish conditions it was stored with
 * (`Nats-Expected-*`, `Nats-Rollup`, `Nats-TTL`) are left out: they would
 * apply to the dead-letter stream.
 */
export function deadLetterHeaders(event: EventImpl, reason: DeadLetterReason, error: unknown): HeaderList {
  const headers: HeaderList = [];
  for (const [name, value] of event.delivery.rawHeaders()) {
    const lower = name.toLowerCase();
    if (PUBLISH_DIRECTIVES.test(name) || lower.startsWith(DEAD_LETTER_PREFIX)) continue;
    if (lower === MSG_ID) {
      if (!headers.some(([n]) => n === Headers.DeadLetterMsgId)) headers.push([Headers.DeadLetterMsgId, value]);
      continue;
    }
    headers.push([name, value]);
  }
  headers.push(
    [Headers.DeadLetterReason, reason],
    [Headers.DeadLetterSubject, event.subject],
    [Headers.DeadLetterStream, event.stream],
    [Headers.DeadLetterConsumer, event.consumer],
    [Headers.DeadLetterSequence, String(event.id)],
    [Headers.DeadLetterAttempts, String(event.deliveryAttempt)],
    [Headers.DeadLetterError, describeError(error)],
  );
  const violations = reason === "invalid" ? violationsOf(error) : undefined;
  if (violations !== undefined) headers.push([Headers.DeadLetterViolations, violationsJson(violations)]);
  return headers;
}

/** Publishes `event`'s dead letter to `subject`, retrying a stream without a leader or a timeout for up to 20 s. */
export function sendDeadLetter(
  rt: Runtime,
  subject: string,
  event: EventImpl,
  reason: DeadLetterReason,
  error: unknown,
): Promise<Appended> {
  return send(
    rt,
    {
      subject,
      payload: event.payload,
      headers: deadLetterHeaders(event, reason, error),
      // The dead letter's own key: a second try (after a lost term, say) is not stored twice.
      idempotencyKey: `ws-dead-letter:${event.stream}:${event.consumer}:${event.id}`,
      expectedLastId: undefined,
      expectedLastSubjectId: undefined,
    },
    {
      timeoutMs: 5_000,
      retry: PUBLISH_RETRY,
      signal: undefined,
      // No stream for the subject is a configuration error, not a blip: give the event back now.
      retryUnbound: false,
    },
  );
}

/** Fails unless a stream captures the dead-letter subject: finding out at the first dead letter is too late. */
export async function assertCaptured(rt: Runtime, subject: string, signal: AbortSignal | undefined): Promise<void> {
  const names = await rt.engine.streamsCapturing(subject, signal);
  if (names.length === 0) {
    throw new WindshiftError(ErrorCode.UnboundSubject, `no stream captures the dead-letter subject "${subject}"`, {
      details: { subject, field: "deadLetter.subject" },
    });
  }
}
