/**
 * The forms every engine that stores events itself (memory, PostgreSQL)
 * holds them in, so that each echoes and delivers what JetStream would: a
 * stream's configuration as held, and an event's headers as stored.
 *
 * @module
 */
import { Headers } from "../wire.js";
import type { OutgoingEvent, RawHeaders, StreamConfig } from "./engine.js";

/**
 * The configuration as the engine holds and echoes it: a frozen copy. Like
 * nats-server, a stream with neither subjects nor sources captures its own
 * name.
 */
export function holdable(config: StreamConfig): StreamConfig {
  const subjects = config.subjects.length === 0 && config.sources.length === 0 ? [config.name] : [...config.subjects];
  return Object.freeze({
    ...config,
    subjects: Object.freeze(subjects),
    sources: Object.freeze(
      config.sources.map((s) => Object.freeze({ ...s, subjects: Object.freeze([...s.subjects]) })),
    ),
  });
}

/**
 * The headers stored with an event: its own, plus the idempotency key and the
 * checks it was published with, under JetStream's names, so that every
 * engine delivers the same headers.
 */
export function storedHeaders(event: OutgoingEvent): RawHeaders {
  const { idempotencyKey, expectedLastId, expectedLastSubjectId } = event;
  if (idempotencyKey === undefined && expectedLastId === undefined && expectedLastSubjectId === undefined) {
    return event.headers;
  }
  const headers = [...event.headers];
  if (idempotencyKey !== undefined) headers.push([Headers.MsgId, idempotencyKey]);
  if (expectedLastId !== undefined) headers.push([Headers.ExpectedLastSequence, String(expectedLastId)]);
  if (expectedLastSubjectId !== undefined) {
    headers.push([Headers.ExpectedLastSubjectSequence, String(expectedLastSubjectId)]);
  }
  return headers;
}
