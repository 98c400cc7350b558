import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import { headers as createHeaders, type MsgHdrs } from "@nats-io/nats-core";
import { raceAbort, throwIfAborted } from "./abort.js";
import type { Event, EventImpl } from "./event.js";
import { assertName, assertSubject, isValidSubject } from "./names.js";
import { toWindshiftError } from "./nats-errors.js";
import { type PublishedEvent, send } from "./publish.js";
import { PUBLISH_RETRY } from "./retry.js";
import type { Runtime } from "./runtime.js";
import * as v from "./validate.js";
import { Headers } from "./wire.js";

/**
 * Why an event was dead-lettered (the `WS-Dead-Letter-Reason` header):
 * its handler failed on the last allowed attempt, threw a `PermanentError`
 * (or the backoff decider said so), its payload could not be decoded, or no
 * handler knows its type.
 */
export type DeadLetterReason = "max-attempts" | "permanent" | "invalid-data" | "unknown-type";

/** Where a processor sends the events it gives up on. */
export interface DeadLetterOptions {
  /**
   * The subject dead letters are published to (a stream must capture it), or
   * a function choosing it per event, e.g. `(event) => \`dlq.${event.subject}\``.
   */
  readonly subject: string | ((event: Event) => string);
}

/** Options for `replayDeadLetters`. */
export interface ReplayOptions {
  /**
   * Replay only dead letters stored on this subject of the dead-letter stream
   * (wildcards allowed).
   * @default all of them
   */
  readonly subject?: string;
  /**
   * Replay at most this many dead letters (duplicates and messages that are
   * not dead letters do not count).
   * @default all that are in the stream when the call starts
   */
  readonly limit?: number;
  /**
   * Keep the dead letters after replaying them instead of deleting them.
   * @default false
   */
  readonly keep?: boolean;
  /**
   * How long to wait for each publish's acknowledgement.
   * @default 5_000
   */
  readonly timeoutMs?: number;
  /** Stops the replay between two events; what was replayed stays replayed. */
  readonly signal?: AbortSignal;
}

/** What `replayDeadLetters` did. */
export interface ReplayResult {
  /** How many dead letters were published to their original subjects again. */
  readonly replayed: number;
  /**
   * Ids (in the dead-letter stream) of dead letters whose idempotency key the
   * original stream still remembers (it would drop them as duplicates). They
   * stay in the dead-letter stream: replay them once the stream's duplicate
   * window has passed.
   */
  readonly duplicates: readonly number[];
  /** Ids of messages in the dead-letter stream that are not dead letters (no `WS-Dead-Letter-Subject`); left alone. */
  readonly skipped: readonly number[];
}

const MAX_ERROR_LENGTH = 1_024;
/** Headers that were instructions for the original publish, not facts about the event. */
const PUBLISH_DIRECTIVES = /^nats-(expected-|rollup$|ttl$)/i;
const DEAD_LETTER_PREFIX = "ws-dead-letter-";
const MSG_ID = Headers.MsgId.toLowerCase();
const REPLAY_KNOWN = new Set(["subject", "limit", "keep", "timeoutMs", "signal"]);
const FETCH_BATCH = 256;

/** A one-line, bounded description of why the handler failed. */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const line = text.replace(/[\r\n]+/g, " ");
  return line.length > MAX_ERROR_LENGTH ? `${line.slice(0, MAX_ERROR_LENGTH - 1)}…` : line;
}

/**
 * The headers of an event's dead letter: the event's own, as delivered, plus
 * the `WS-Dead-Letter-*` facts. Its `Nats-Msg-Id` moves to
 * `WS-Dead-Letter-Msg-Id`, and the publish conditions it was stored with
 * (`Nats-Expected-*`, `Nats-Rollup`, `Nats-TTL`) are left out: they would
 * apply to the dead-letter stream.
 */
export function deadLetterHeaders(event: EventImpl, reason: DeadLetterReason, error: unknown): MsgHdrs {
  const h = createHeaders();
  for (const [name, values] of event.rawHeaders ?? []) {
    const lower = name.toLowerCase();
    if (PUBLISH_DIRECTIVES.test(name) || lower.startsWith(DEAD_LETTER_PREFIX)) continue;
    if (lower === MSG_ID) {
      const id = values[0];
      if (id !== undefined) h.set(Headers.DeadLetterMsgId, id);
      continue;
    }
    for (const value of values) h.append(name, value);
  }
  h.set(Headers.DeadLetterReason, reason);
  h.set(Headers.DeadLetterSubject, event.subject);
  h.set(Headers.DeadLetterStream, event.stream);
  h.set(Headers.DeadLetterConsumer, event.consumer);
  h.set(Headers.DeadLetterSequence, String(event.id));
  h.set(Headers.DeadLetterAttempts, String(event.deliveryAttempt));
  h.set(Headers.DeadLetterError, describeError(error));
  // The dead letter's own key: a second try (after a lost term, say) is not stored twice.
  h.set(Headers.MsgId, `ws-dead-letter:${event.stream}:${event.consumer}:${event.id}`);
  return h;
}

/** Publishes `event`'s dead letter to `subject`, retrying a stream without a leader or a timeout for up to 20 s. */
export function sendDeadLetter(
  rt: Runtime,
  subject: string,
  event: EventImpl,
  reason: DeadLetterReason,
  error: unknown,
): Promise<PublishedEvent> {
  return send(rt, subject, event.payload, deadLetterHeaders(event, reason, error), {
    timeoutMs: 5_000,
    retry: PUBLISH_RETRY,
    signal: undefined,
    // No stream for the subject is a configuration error, not a blip: give the event back now.
    retryUnbound: false,
  });
}

/**
 * Publishes the dead letters in `stream` to their original subjects again,
 * oldest first, with their original payload and headers (the dead-letter
 * headers removed, `Nats-Msg-Id` restored), and deletes each from `stream`
 * once its publish is acknowledged. See `Events.replayDeadLetters`.
 */
export async function replayDeadLetters(rt: Runtime, stream: string, options?: ReplayOptions): Promise<ReplayResult> {
  assertName("stream", stream);
  const o = v.optionsObject("options", options);
  v.rejectUnknown(o, REPLAY_KNOWN);
  if (o.subject !== undefined) assertSubject("subject", o.subject, true);
  const filter = o.subject as string | undefined;
  const limit = v.integer("limit", o.limit, 1) ?? Number.POSITIVE_INFINITY;
  const keep = v.boolean("keep", o.keep) ?? false;
  const timeoutMs = v.durationMs("timeoutMs", o.timeoutMs, 1) ?? 5_000;
  const signal = v.signal("signal", o.signal);
  throwIfAborted(signal);

  const jsm = await rt.jsm();
  let name: string;
  let pending: number;
  try {
    // An ephemeral reader: it counts what there is to replay when the call
    // starts, and later dead letters are left for the next replay.
    const info = await raceAbort(
      jsm.consumers.add(stream, {
        ack_policy: AckPolicy.None,
        deliver_policy: DeliverPolicy.All,
        ...(filter === undefined ? {} : { filter_subject: filter }),
        inactive_threshold: 60_000_000_000,
        mem_storage: true,
      }),
      signal,
    );
    name = info.name;
    pending = info.num_pending;
  } catch (err) {
    throw toWindshiftError(err, `replayDeadLetters("${stream}")`);
  }
  let replayed = 0;
  let seen = 0;
  const duplicates: number[] = [];
  const skipped: number[] = [];
  try {
    const consumer = await rt.js.consumers.get(stream, name);
    while (seen < pending && replayed < limit) {
      throwIfAborted(signal);
      const want = Math.min(FETCH_BATCH, pending - seen, limit - replayed);
      const batch = await consumer.fetch({ max_messages: want, expires: 5_000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        seen++;
        const outcome = await replayOne(rt, m, timeoutMs, signal);
        if (outcome === "skipped") {
          skipped.push(m.seq);
          continue;
        }
        if (outcome === "duplicate") {
          rt.logger.warn("dead letter not replayed: its idempotency key is inside the stream's duplicate window", {
            stream,
            id: m.seq,
          });
          duplicates.push(m.seq);
          continue;
        }
        replayed++;
        if (!keep) await jsm.streams.deleteMessage(stream, m.seq, false);
        if (seen >= pending || replayed >= limit) break;
      }
      if (got === 0) break;
    }
  } catch (err) {
    throw toWindshiftError(err, `replayDeadLetters("${stream}") after ${replayed} replayed`);
  } finally {
    await jsm.consumers.delete(stream, name).catch(() => {});
  }
  rt.logger.info("dead letters replayed", { stream, replayed, duplicates: duplicates.length, skipped: skipped.length });
  return { replayed, duplicates, skipped };
}

async function replayOne(
  rt: Runtime,
  m: JsMsg,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<"replayed" | "duplicate" | "skipped"> {
  const subject = m.headers?.get(Headers.DeadLetterSubject);
  if (subject === undefined || subject === "" || !isValidSubject(subject, false)) return "skipped";
  const h = createHeaders();
  let msgId: string | undefined;
  for (const [name, values] of m.headers ?? []) {
    const lower = name.toLowerCase();
    if (lower === MSG_ID) continue;
    if (lower === Headers.DeadLetterMsgId.toLowerCase()) {
      msgId = values[0];
      continue;
    }
    if (lower.startsWith(DEAD_LETTER_PREFIX)) continue;
    for (const value of values) h.append(name, value);
  }
  if (msgId !== undefined) h.set(Headers.MsgId, msgId);
  const published = await send(rt, subject, m.data, h, {
    timeoutMs,
    // Without a key, a retry after a timeout could store the event twice.
    retry: msgId === undefined ? undefined : PUBLISH_RETRY,
    signal,
  });
  return published.duplicate ? "duplicate" : "replayed";
}
