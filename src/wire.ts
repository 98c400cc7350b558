/**
 * The wire format shared with windshift-go: header names and the time format.
 *
 * @module
 */

/** Header names used on the wire. Spelled exactly as windshift-go writes them. */
export const Headers = {
  /** Full Protobuf type name of the payload, e.g. `shop.v1.OrderCreated`. */
  DataType: "WS-Data-Type",
  /** When the event occurred, RFC 3339 with fractional seconds. */
  PublishedTime: "WS-Published-Time",
  /** W3C `traceparent` value, under windshift-go's header name. */
  TraceParent: "WS-Trace-Parent",
  /** W3C `tracestate` value, under windshift-go's header name. */
  TraceState: "WS-Trace-State",
  /** JetStream's deduplication key: the event's idempotency key. */
  MsgId: "Nats-Msg-Id",
  /** JetStream's optimistic-concurrency check on the stream's last sequence. */
  ExpectedLastSequence: "Nats-Expected-Last-Sequence",
  /** JetStream's optimistic-concurrency check on the last sequence of the subject. */
  ExpectedLastSubjectSequence: "Nats-Expected-Last-Subject-Sequence",
  /**
   * Why an event was dead-lettered: `max-attempts`, `permanent`,
   * `invalid-data`, `invalid` or `unknown-type`. This and the other `WS-Dead-Letter-*`
   * headers are added to the event's own when it is dead-lettered.
   */
  DeadLetterReason: "WS-Dead-Letter-Reason",
  /** The subject the dead-lettered event was published to; replay publishes it there again. */
  DeadLetterSubject: "WS-Dead-Letter-Subject",
  /** The stream the dead-lettered event was stored in. */
  DeadLetterStream: "WS-Dead-Letter-Stream",
  /** The consumer that gave up on the event. */
  DeadLetterConsumer: "WS-Dead-Letter-Consumer",
  /** The event's id (stream sequence) in that stream. */
  DeadLetterSequence: "WS-Dead-Letter-Sequence",
  /** How many times the event had been delivered. */
  DeadLetterAttempts: "WS-Dead-Letter-Attempts",
  /** The last error's message (one line, at most 1,024 characters). */
  DeadLetterError: "WS-Dead-Letter-Error",
  /**
   * With reason `invalid`: the broken rules as a JSON array of
   * `{ field, rule, ruleId, message, forKey }`, as many as fit in 2,048
   * characters.
   */
  DeadLetterViolations: "WS-Dead-Letter-Violations",
  /**
   * The event's own `Nats-Msg-Id`, kept aside so the dead-letter stream does
   * not deduplicate by it; replay restores it.
   */
  DeadLetterMsgId: "WS-Dead-Letter-Msg-Id",
} as const;

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Formats a time as RFC 3339 in UTC with millisecond precision, which Go's
 * `time.RFC3339Nano` parser reads.
 */
export function formatTime(date: Date): string {
  return date.toISOString();
}

/**
 * Parses an RFC 3339 time with any number of fractional digits (milliseconds
 * from JavaScript, nanoseconds from Go) and any UTC offset. Sub-millisecond
 * digits are truncated. Returns `undefined` for anything else.
 */
export function parseTime(value: string): Date | undefined {
  const m = RFC3339.exec(value);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac, z, sign, oh, om] = m;
  if (Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > 31) return undefined;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 60 || Number(oh ?? 0) > 23 || Number(om ?? 0) > 59) {
    return undefined;
  }
  const ms = frac === undefined ? 0 : Number(frac.padEnd(3, "0").slice(0, 3));
  let t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  if (z === undefined) {
    const offset = (Number(oh) * 60 + Number(om)) * 60_000;
    t += sign === "+" ? -offset : offset;
  }
  if (Number.isNaN(t)) return undefined;
  return new Date(t);
}
