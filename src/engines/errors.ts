/**
 * The failures both engines report for the same causes, worded once, so that
 * a message reads the same whichever engine ran: each names the thing, what
 * was expected and what was found, and what to do about it. The JetStream
 * engine fills them from the server's answer, the memory engine from what it
 * holds; codes are those `ErrorCode` documents, only the words live here.
 *
 * @module
 */

import { ErrorCode, WindshiftError } from "../errors.js";
import { describe } from "../internal/names.js";
import { hasWildcard, isSubsetOf } from "./subjects.js";

/** What an engine adds to an error it words here: the cause, and details of its own (`jsErrorCode`). */
export interface Extra {
  readonly cause?: unknown;
  readonly details?: Readonly<Record<string, unknown>>;
}

function failure(code: ErrorCode, message: string, details: Record<string, unknown>, extra?: Extra): WindshiftError {
  const all = { ...details, ...extra?.details };
  return new WindshiftError(
    code,
    message,
    extra?.cause === undefined ? { details: all } : { cause: extra.cause, details: all },
  );
}

/** How a missing stream or consumer came to matter: a call that uses it, or one that deletes it. */
export interface Missing {
  /** The consumer the call was about, when it was about one of the stream's consumers. */
  readonly consumer?: string | undefined;
  /** The call was deleting it: creating it is no fix. */
  readonly deleting?: boolean;
}

/**
 * `NOT_FOUND`: stream `stream` does not exist. The fix names the calls that
 * create it (and the consumer the call was about).
 */
export function streamNotFound(stream: string, missing: Missing = {}, extra?: Extra): WindshiftError {
  const name = describe(stream);
  const { consumer, deleting = false } = missing;
  const fix = deleting
    ? "; listStreams() lists those there are"
    : `: create it with ensureStream(${name}, { subjects: [...] })${
        consumer === undefined
          ? ""
          : `, then its consumer with ensureConsumer(${name}, { name: ${describe(consumer)} })`
      }`;
  const details = consumer === undefined ? { stream } : { stream, consumer };
  return failure(ErrorCode.NotFound, `stream ${name} not found${fix}`, details, extra);
}

/** `NOT_FOUND`: stream `stream` has no consumer `consumer`; the fix names the call that creates it. */
export function consumerNotFound(
  stream: string,
  consumer: string,
  missing: Missing = {},
  extra?: Extra,
): WindshiftError {
  const fix = missing.deleting
    ? `; listConsumers(${describe(stream)}) lists those there are`
    : `: create it with ensureConsumer(${describe(stream)}, { name: ${describe(consumer)} })`;
  return failure(
    ErrorCode.NotFound,
    `consumer ${describe(consumer)} of stream ${describe(stream)} not found${fix}`,
    { stream, consumer },
    extra,
  );
}

/**
 * `NOT_FOUND` for a feed whose consumer went away while it was read (deleted,
 * its stream deleted, or removed after `inactiveThresholdMs`).
 */
export function consumerGone(stream: string, consumer: string, extra?: Extra): WindshiftError {
  return failure(
    ErrorCode.NotFound,
    `consumer ${describe(consumer)} of stream ${describe(stream)} no longer exists (deleted, or inactive past its inactiveThresholdMs); no more events come from it (onConsumerDeleted: "recreate" creates it again)`,
    { stream, consumer },
    extra,
  );
}

/** Which event was asked for: by id, or the last on a subject. */
export type EventWanted = { readonly id: number } | { readonly lastOn: string };

/** `NOT_FOUND`: stream `stream` has no such event (never stored, deleted, or expired). */
export function eventNotFound(stream: string, which: EventWanted, extra?: Extra): WindshiftError {
  const what = "id" in which ? `event ${which.id}` : `event on ${describe(which.lastOn)}`;
  const details = "id" in which ? { stream, id: which.id } : { stream, subject: which.lastOn };
  return failure(
    ErrorCode.NotFound,
    `stream ${describe(stream)} has no ${what} (never stored, deleted, or removed by a limit)`,
    details,
    extra,
  );
}

/** `NOT_FOUND`: key-value bucket `bucket` does not exist. */
export function bucketNotFound(bucket: string, extra?: Extra): WindshiftError {
  return failure(
    ErrorCode.NotFound,
    `key-value bucket ${describe(bucket)} not found: it is created by what uses it (idempotent(), ensureWorkflow())`,
    { bucket },
    extra,
  );
}

/** `UNBOUND_SUBJECT`: no stream captures `subject`; the fix names a wildcard a stream could take. */
export function unboundSubject(subject: string, extra?: Extra): WindshiftError {
  const dot = subject.indexOf(".");
  const wildcard = dot === -1 ? "" : ` (or a wildcard such as ${describe(`${subject.slice(0, dot)}.>`)})`;
  return failure(
    ErrorCode.UnboundSubject,
    `no stream captures subject ${describe(subject)}: add it${wildcard} to a stream's subjects with ensureStream`,
    { subject },
    extra,
  );
}

/** What a publish asked the stream to check. */
export interface SequenceCheck {
  readonly subject: string;
  /** The stream that refused, when known. */
  readonly stream: string | undefined;
  readonly expectedLastId: number | undefined;
  readonly expectedLastSubjectId: number | undefined;
}

/**
 * Which check failed, from what was asked and the last id the stream
 * answered with. The subject's check comes first (in nats-server and in the
 * memory engine), so with both asked for: an `actual` equal to the
 * subject's expectation means the subject's check passed and the stream's
 * failed; one below it means the subject's failed; one above it could be
 * either (`undefined`).
 */
function failedCheck(check: SequenceCheck, actual: number): "stream" | "subject" | undefined {
  const { expectedLastId, expectedLastSubjectId } = check;
  if (expectedLastSubjectId === undefined) return expectedLastId === undefined ? undefined : "stream";
  if (expectedLastId === undefined) return "subject";
  if (actual === expectedLastSubjectId) return "stream";
  return actual < expectedLastSubjectId ? "subject" : undefined;
}

/**
 * `WRONG_SEQUENCE`: an `expectedLastId` or `expectedLastSubjectId` check
 * failed; `actual` is the last id the stream (or the subject) has. The
 * message names the option, both ids and the id to publish with now;
 * `details` has `expected`, `actual` and the `option` that failed.
 */
export function wrongSequence(check: SequenceCheck, actual: number, extra?: Extra): WindshiftError {
  const { subject, stream } = check;
  const failed = failedCheck(check, actual);
  const where = `publish to ${describe(subject)}`;
  const base = { subject, ...(stream === undefined ? {} : { stream }), actual };
  if (failed === undefined) {
    return failure(
      ErrorCode.WrongSequence,
      `${where}: expectedLastId ${check.expectedLastId} and expectedLastSubjectId ${check.expectedLastSubjectId}, but the last id (of the stream or on the subject) is ${actual}: another event was stored first; read the stream, then publish with both ids as they are now`,
      base,
      extra,
    );
  }
  const option = failed === "stream" ? "expectedLastId" : "expectedLastSubjectId";
  const expected = (failed === "stream" ? check.expectedLastId : check.expectedLastSubjectId) as number;
  const holder =
    failed === "subject"
      ? `on ${describe(subject)}`
      : stream === undefined
        ? "in the stream"
        : `in stream ${describe(stream)}`;
  const fix =
    actual > expected
      ? `: another event was stored first; read it, then publish with ${option} ${actual}`
      : `; publish with ${option} ${actual}`;
  return failure(
    ErrorCode.WrongSequence,
    `${where}: ${option} ${expected}, but the last id ${holder} is ${actual}${fix}`,
    { ...base, expected, option },
    extra,
  );
}

/**
 * `WRONG_SEQUENCE` of a key-value write: the key's revision is not
 * `expected` (0 for a key that does not exist).
 */
export function wrongRevision(
  bucket: string,
  key: string,
  expected: number,
  actual: number | undefined,
): WindshiftError {
  const found =
    actual === undefined ? "it has another" : actual === 0 ? "it does not exist" : `its revision is ${actual}`;
  return failure(
    ErrorCode.WrongSequence,
    `key ${describe(key)} of bucket ${describe(bucket)}: expectedRevision ${expected}, but ${found}: it was written since; read it again, then write with its revision`,
    { bucket, key, expected, ...(actual === undefined ? {} : { actual }) },
  );
}

/**
 * The first of `filters` that no subject of the stream could ever deliver
 * (`undefined` when all can): a filter within one of them, or a wildcard
 * filter wider than one of them, can.
 */
export function filterOutside(filters: readonly string[], subjects: readonly string[]): string | undefined {
  return filters.find((filter) => {
    const wildcard = hasWildcard(filter);
    return !subjects.some((s) => isSubsetOf(filter, s) || (wildcard && isSubsetOf(s, filter)));
  });
}

/**
 * `SERVER`: a consumer's filter lies outside its stream's subjects, so it
 * could never deliver anything (nats-server: `consumer filter subject is not
 * a valid subset of the interest subjects`). `subjects` are the stream's,
 * when known.
 */
export function filterRefused(
  stream: string,
  filter: string | undefined,
  subjects: readonly string[] | undefined,
  extra?: Extra,
): WindshiftError {
  const which = filter === undefined ? "a consumer filter" : `consumer filter ${describe(filter)}`;
  const of =
    subjects === undefined
      ? `stream ${describe(stream)}'s subjects`
      : `stream ${describe(stream)}'s subjects (${subjects.map((s) => describe(s)).join(", ")})`;
  return failure(
    ErrorCode.Server,
    `${which} is not within ${of}: it could never deliver an event; filter on subjects the stream captures, or add the subject to the stream`,
    {
      stream,
      ...(filter === undefined ? {} : { subject: filter }),
      ...(subjects === undefined ? {} : { streamSubjects: [...subjects] }),
    },
    extra,
  );
}

/** `SERVER`: `subject` of stream `stream` overlaps the subjects of stream `other` (or of another stream, when unknown). */
export function subjectsOverlap(
  stream: string,
  subject: string | undefined,
  other: string | undefined,
  extra?: Extra,
): WindshiftError {
  const which = subject === undefined ? "its subjects overlap" : `subject ${describe(subject)} overlaps`;
  const whose = other === undefined ? "an existing stream's subjects" : `the subjects of stream ${describe(other)}`;
  return failure(
    ErrorCode.Server,
    `stream ${describe(stream)}: ${which} ${whose}: a subject belongs to one stream only; remove it from one of them`,
    {
      stream,
      ...(subject === undefined ? {} : { subject }),
      ...(other === undefined ? {} : { otherStream: other }),
    },
    extra,
  );
}

/** `SERVER`: two of stream `stream`'s own subjects overlap (`a` comes first in its list). */
export function ownSubjectsOverlap(stream: string, a: string, b: string, extra?: Extra): WindshiftError {
  return failure(
    ErrorCode.Server,
    `stream ${describe(stream)}: its subjects ${describe(a)} and ${describe(b)} overlap: keep only the wider one`,
    { stream, subjects: [a, b] },
    extra,
  );
}

/** `SERVER`: an update would change the stream's storage, which the server cannot do in place. */
export function storageChange(stream: string, from: string, to: string, extra?: Extra): WindshiftError {
  return failure(
    ErrorCode.Server,
    `stream ${describe(stream)}: the storage type cannot change in place ("${from}" to "${to}"): keep storage: "${from}", or delete the stream and create it again (its events are lost)`,
    { stream, storage: from, wanted: to },
    extra,
  );
}

/** What a stream's limit refusing an event is named by the server, and what to do about it. */
const LIMITS: readonly (readonly [RegExp, string])[] = [
  [
    /per subject/i,
    "the subject is at the stream's maxEventsPerSubject and discardNewPerSubject refuses more; raise maxEventsPerSubject, or set discardNewPerSubject: false",
  ],
  [
    /maximum messages/i,
    'the stream is at its maxEvents and discardPolicy "new" refuses more; raise maxEvents, purge it, or use discardPolicy "old"',
  ],
  [
    /maximum bytes/i,
    'the stream is at its maxBytes and discardPolicy "new" refuses more; raise maxBytes, purge it, or use discardPolicy "old"',
  ],
  [
    /message size/i,
    "the event is larger than the stream's maxEventSize; raise maxEventSize, or publish a smaller event",
  ],
  [/maximum payload/i, "the event is larger than the server's max_payload; publish a smaller event"],
];

/**
 * `SERVER`: stream `stream` refused an event by a limit; `reason` is the
 * server's text (`maximum messages exceeded`), kept in the message, followed
 * by which limit that is and what to do.
 */
export function limitRefused(
  subject: string,
  stream: string | undefined,
  reason: string,
  extra?: Extra,
): WindshiftError {
  const hint = LIMITS.find(([pattern]) => pattern.test(reason))?.[1];
  const who = stream === undefined ? "" : ` (stream ${describe(stream)})`;
  return failure(
    ErrorCode.Server,
    `publish to ${describe(subject)}${who}: ${reason}${hint === undefined ? "" : `: ${hint}`}`,
    { subject, ...(stream === undefined ? {} : { stream }) },
    extra,
  );
}
