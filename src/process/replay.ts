import type { StoredEvent } from "../engines/engine.js";
import { throwIfAborted } from "../internal/abort.js";
import { assertName, assertSubject, isValidSubject } from "../internal/names.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import { PUBLISH_RETRY } from "../internal/retry.js";
import * as v from "../internal/validate.js";
import { send } from "../publish/send.js";
import type { Runtime } from "../runtime.js";
import type { HeaderList } from "../telemetry/trace-context.js";
import { Headers } from "../wire.js";
import { DEAD_LETTER_PREFIX } from "./dead-letter.js";

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

/** The defaults of {@link ReplayOptions}. */
export const replayDefaults: Defaults<ReplayOptions> = Object.freeze({
  subject: undefined,
  limit: undefined,
  keep: false,
  timeoutMs: 5_000,
  signal: undefined,
});

const MSG_ID = Headers.MsgId.toLowerCase();
const DEAD_LETTER_MSG_ID = Headers.DeadLetterMsgId.toLowerCase();
const DEAD_LETTER_SUBJECT = Headers.DeadLetterSubject.toLowerCase();

/**
 * Publishes the dead letters in `stream` to their original subjects again,
 * oldest first, with their original payload and headers (the dead-letter
 * headers removed, `Nats-Msg-Id` restored), and deletes each from `stream`
 * once its publish is acknowledged. See `Events.replayDeadLetters`.
 */
export async function replayDeadLetters(rt: Runtime, stream: string, options?: ReplayOptions): Promise<ReplayResult> {
  assertName("stream", stream);
  const o = mergeOptions<ReplayOptions>("options", options, replayDefaults);
  if (o.subject !== undefined) assertSubject("subject", o.subject, { wildcards: true });
  const subject = o.subject as string | undefined;
  const limit = v.integer("limit", o.limit, 1) ?? Number.POSITIVE_INFINITY;
  const keep = v.boolean("keep", o.keep) as boolean;
  const timeoutMs = v.durationMs("timeoutMs", o.timeoutMs, 1) as number;
  const signal = v.signal("signal", o.signal);
  throwIfAborted(signal);

  let replayed = 0;
  const duplicates: number[] = [];
  const skipped: number[] = [];
  const stored = rt.engine.read(stream, {
    ...(subject === undefined ? {} : { subject }),
    ...(signal === undefined ? {} : { signal }),
  });
  for await (const letter of stored) {
    if (replayed >= limit) break;
    throwIfAborted(signal);
    const outcome = await replayOne(rt, letter, timeoutMs, signal);
    if (outcome === "skipped") {
      skipped.push(letter.id);
    } else if (outcome === "duplicate") {
      rt.logger.warn("dead letter not replayed: its idempotency key is inside the stream's duplicate window", {
        stream,
        id: letter.id,
      });
      duplicates.push(letter.id);
    } else {
      replayed++;
      if (!keep) await rt.engine.deleteEvent(stream, letter.id, signal);
    }
  }
  rt.logger.info("dead letters replayed", { stream, replayed, duplicates: duplicates.length, skipped: skipped.length });
  return { replayed, duplicates, skipped };
}

async function replayOne(
  rt: Runtime,
  letter: StoredEvent,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<"replayed" | "duplicate" | "skipped"> {
  let subject: string | undefined;
  let msgId: string | undefined;
  const headers: HeaderList = [];
  for (const [name, value] of letter.headers) {
    const lower = name.toLowerCase();
    if (lower === DEAD_LETTER_SUBJECT) subject ??= value;
    if (lower === DEAD_LETTER_MSG_ID) msgId ??= value;
    if (lower === MSG_ID || lower.startsWith(DEAD_LETTER_PREFIX)) continue;
    headers.push([name, value]);
  }
  if (subject === undefined || subject === "" || !isValidSubject(subject)) return "skipped";
  const published = await send(
    rt,
    {
      subject,
      payload: letter.payload,
      headers,
      idempotencyKey: msgId,
      expectedLastId: undefined,
      expectedLastSubjectId: undefined,
    },
    // Without a key, a retry after a timeout could store the event twice.
    { timeoutMs, retry: msgId === undefined ? undefined : PUBLISH_RETRY, signal },
  );
  return published.duplicate ? "duplicate" : "replayed";
}
